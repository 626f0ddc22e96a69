package com.acme.features

object Main {
  def main(args: Array[String]): Unit = println("features")
}
