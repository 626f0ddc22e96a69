name := "scorer"
version := "0.3.0"
scalaVersion := "2.12.18"
