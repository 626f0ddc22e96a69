package com.acme.scorer

object Score {
  def main(args: Array[String]): Unit = println("score " + args.mkString(" "))
}
