package demo;

public final class EnrichTest {
    public static void main(String[] args) {
        if (!Enrich.region("DE").equals("emea") || !Enrich.region("US").equals("amer") || !Enrich.region("JP").equals("other")) {
            System.err.println("region mapping is wrong");
            System.exit(1);
        }
        System.out.println("EnrichTest passed");
    }
}
