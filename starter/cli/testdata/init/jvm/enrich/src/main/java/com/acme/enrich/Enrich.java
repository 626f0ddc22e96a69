package com.acme.enrich;

public class Enrich {
    public static void main(String[] args) {
        System.out.println("enrich " + String.join(" ", args));
    }
}
