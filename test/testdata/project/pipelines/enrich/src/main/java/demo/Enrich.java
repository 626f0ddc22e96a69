package demo;

/** Enrich adds a region to each order line: a tiny JVM pipeline built with javac + jar. */
public final class Enrich {
    private Enrich() {}

    public static String region(String country) {
        switch (country) {
            case "DE": case "FR": case "NL": return "emea";
            case "US": case "CA": return "amer";
            default: return "other";
        }
    }

    public static void main(String[] args) {
        System.out.println("enriching orders in " + (args.length > 0 ? args[0] : "default"));
    }
}
