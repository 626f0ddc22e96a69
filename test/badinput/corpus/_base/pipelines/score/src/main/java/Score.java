public class Score {}
