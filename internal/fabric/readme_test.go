package fabric

import (
	"os"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/platform"
)

// The configuration reference names, for each job scheduler, every fabric
// kind of the registry that runs its jobs.
func TestReadmeSchedulerRowNamesEveryKind(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "| `jobs.<j>.scheduler` |") {
			row = l
		}
	}
	if row == "" {
		t.Fatal("README.md has no `jobs.<j>.scheduler` row")
	}
	for _, s := range []string{"databricks", "airflow"} {
		i := strings.Index(row, "`"+s+"` (")
		if i < 0 {
			t.Fatalf("the scheduler row does not describe %s: %s", s, row)
		}
		part := row[i+len(s)+4:]
		part = part[:strings.Index(part, ")")]
		for _, k := range platform.KindsRunning(s) {
			if !strings.Contains(part, "`"+string(k)+"`") {
				t.Errorf("README.md's `jobs.<j>.scheduler` row does not say %s jobs run on %s fabrics: (%s)", s, k, part)
			}
		}
	}
}
