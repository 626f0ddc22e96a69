package com.acme.enrich;

public class EnrichTest {
    public static void main(String[] args) {
        Enrich.main(new String[] {"test"});
    }
}
