package build

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/manifest"
)

// jcommonFiles is a small Java library built by convention; its greeting's
// prefix is a resource, which must be on the classpath too.
var jcommonFiles = map[string]string{
	"src/main/java/com/example/jcommon/Greeting.java": `package com.example.jcommon;

import java.io.InputStream;

public class Greeting {
    public static String of(String name) throws Exception {
        try (InputStream in = Greeting.class.getResourceAsStream("/jcommon/prefix.txt")) {
            return new String(in.readAllBytes(), "UTF-8").trim() + " " + name;
        }
    }
}
`,
	"src/main/resources/jcommon/prefix.txt": "hello\n",
}

// usingFiles is a Java pipeline that imports the library's class in its code
// and whose test calls it.
var usingFiles = map[string]string{
	"pom.xml": "<project><dependencies><dependency><groupId>com.example</groupId><artifactId>jcommon</artifactId><version>1.0.0</version></dependency></dependencies></project>\n",
	"src/main/java/com/example/orders/Orders.java": `package com.example.orders;

import com.example.jcommon.Greeting;

public class Orders {
    public static String hello(String name) throws Exception { return Greeting.of(name); }
}
`,
	"src/test/java/com/example/orders/OrdersTest.java": `package com.example.orders;

public class OrdersTest {
    public static void main(String[] args) throws Exception {
        String got = Orders.hello("orders");
        if (!got.equals("hello orders")) { System.err.println("got " + got); System.exit(1); }
        System.out.println("OrdersTest ok: " + got);
    }
}
`,
}

// libraryExporter exports files as the library at path, recording the paths asked for.
func libraryExporter(files map[string]string, asked *[]string) func(ctx context.Context, path, dir string) error {
	return func(ctx context.Context, path, dir string) error {
		*asked = append(*asked, path)
		return (&source{files: files}).export(ctx, dir)
	}
}

// A Java pipeline built by convention compiles and tests against the Java
// library it uses, compiled from the library's sources at the commit; its
// jar holds none of the library's classes; the library's tree is part of
// its cache key.
func TestJavaPipelineUsesLibrary(t *testing.T) {
	needJDK(t)
	ctx := context.Background()
	p := manifest.Pipeline{Name: "orders_java", Path: "pipelines/orders_java", Language: manifest.Java,
		Uses: []manifest.UsedLibrary{{Name: "jcommon", Path: "libs/jcommon", Tree: tree2}}}

	// Without the library the pipeline does not compile.
	_, err := (&Builder{StateDir: t.TempDir()}).Build(ctx, Request{Pipeline: p, TreeHash: treeJ, Export: (&source{files: usingFiles}).export})
	if f := buildErr(t, err, ErrBuildFailed); !strings.Contains(f.Msg, "package com.example.jcommon does not exist") {
		t.Fatalf("without the library: %s", f.Msg)
	}

	b := &Builder{StateDir: t.TempDir()}
	var asked []string
	res, err := b.Build(ctx, Request{Pipeline: p, TreeHash: treeJ, Export: (&source{files: usingFiles}).export,
		ExportLibrary: libraryExporter(jcommonFiles, &asked)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(asked, ",") != "libs/jcommon" {
		t.Errorf("exported libraries %v, want libs/jcommon", asked)
	}
	log, err := os.ReadFile(b.file(res.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"compiles against library jcommon from libs/jcommon (tree " + tree2 + "): uses-classes/jcommon", "OrdersTest ok: hello orders"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	names := zipNames(t, b.file(res.Object))
	var hasOrders bool
	for _, n := range names {
		hasOrders = hasOrders || n == "com/example/orders/Orders.class"
		if strings.HasPrefix(n, "com/example/jcommon/") || strings.HasPrefix(n, "jcommon/") {
			t.Errorf("the pipeline's jar holds the library's %s: %v", n, names)
		}
	}
	if !hasOrders {
		t.Errorf("jar lacks the pipeline's class: %v", names)
	}

	// A change of the library (its tree, or how it is built) is a new cache key.
	for _, u := range []manifest.UsedLibrary{
		{Name: "jcommon", Path: "libs/jcommon", Tree: tree1},
		{Name: "jcommon", Path: "libs/jcommon", Tree: tree2, Build: "mvn -B package", Artifact: "target/*.jar"},
	} {
		q := p
		q.Uses = []manifest.UsedLibrary{u}
		if Key(q, treeJ) == res.Key {
			t.Errorf("library %+v leaves the pipeline's cache key as it was", u)
		}
	}
}

// A library that does not compile, or has nothing to compile, fails its
// dependant's build naming the library and its path.
func TestJavaPipelineLibraryErrors(t *testing.T) {
	needJDK(t)
	ctx := context.Background()
	p := manifest.Pipeline{Name: "orders_java", Path: "pipelines/orders_java", Language: manifest.Java,
		Uses: []manifest.UsedLibrary{{Name: "jcommon", Path: "libs/jcommon", Tree: tree2}}}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"broken", with(jcommonFiles, map[string]string{"src/main/java/com/example/jcommon/Greeting.java": "package com.example.jcommon;\npublic class Greeting { int x = ; }\n"}),
			[]string{"library jcommon (libs/jcommon), which the pipeline depends on, does not compile: javac exited with", "Greeting.java", "fix the library's compile errors"}},
		{"no sources", map[string]string{"build.sbt": "\n"},
			[]string{"library jcommon (libs/jcommon), which the pipeline depends on, has no Java sources under libs/jcommon/src/main/java", "give the library build: and artifact:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			_, err := (&Builder{StateDir: t.TempDir()}).Build(ctx, Request{Pipeline: p, TreeHash: treeJ, Export: (&source{files: usingFiles}).export,
				ExportLibrary: libraryExporter(tc.files, &asked)})
			f := buildErr(t, err, ErrBuildFailed)
			for _, w := range tc.want {
				if !strings.Contains(f.Msg, w) {
					t.Errorf("error lacks %q: %s", w, f.Msg)
				}
			}
		})
	}
}

// A library with a build command (as a scala library has) brings the jar
// that command builds; a pipeline with its own build command gets the
// libraries' classpath as $SHIPLINE_LIBRARY_CLASSPATH.
func TestJavaPipelineUsesBuiltLibraryJar(t *testing.T) {
	needJDK(t)
	ctx := context.Background()
	libBuild := `mkdir -p out target && javac -d out $(find src/main/java -name '*.java') && cp -r src/main/resources/. out/ && jar --create --file target/jcommon.jar -C out .`
	p := manifest.Pipeline{Name: "orders_java", Path: "pipelines/orders_java", Language: manifest.Java,
		Uses: []manifest.UsedLibrary{{Name: "jcommon", Path: "libs/jcommon", Tree: tree2, Build: libBuild, Artifact: "target/*.jar"}}}
	b := &Builder{StateDir: t.TempDir()}
	var asked []string
	res, err := b.Build(ctx, Request{Pipeline: p, TreeHash: treeJ, Export: (&source{files: usingFiles}).export,
		ExportLibrary: libraryExporter(jcommonFiles, &asked)})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(b.file(res.LogPath))
	for _, want := range []string{"compiles against library jcommon from libs/jcommon (tree " + tree2 + "): uses/jcommon/target/jcommon.jar", "OrdersTest ok: hello orders"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// The pipeline's own test and build commands compile and run with the
	// classpath they are given.
	custom := p
	custom.Test = `mkdir -p tout && javac -cp "$SHIPLINE_LIBRARY_CLASSPATH" -d tout $(find src -name '*.java') && java -cp "tout:$SHIPLINE_LIBRARY_CLASSPATH" com.example.orders.OrdersTest`
	custom.Build = `mkdir -p out && javac -cp "$SHIPLINE_LIBRARY_CLASSPATH" -d out $(find src/main/java -name '*.java') && jar --create --file orders.jar -C out .`
	custom.Artifact = "orders.jar"
	cb := &Builder{StateDir: t.TempDir()}
	res, err = cb.Build(ctx, Request{Pipeline: custom, TreeHash: treeJ, Export: (&source{files: usingFiles}).export,
		ExportLibrary: libraryExporter(jcommonFiles, &asked)})
	if err != nil {
		t.Fatal(err)
	}
	log, _ = os.ReadFile(cb.file(res.LogPath))
	for _, want := range []string{"SHIPLINE_LIBRARY_CLASSPATH is set for the build and test commands", "OrdersTest ok: hello orders"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("custom build's log lacks %q:\n%s", want, log)
		}
	}

	// A library whose build fails names the library.
	broken := p
	broken.Uses = []manifest.UsedLibrary{{Name: "jcommon", Path: "libs/jcommon", Tree: tree2, Build: "echo 'error: not found: type Foo' >&2; exit 1", Artifact: "target/*.jar"}}
	_, err = (&Builder{StateDir: t.TempDir()}).Build(ctx, Request{Pipeline: broken, TreeHash: treeJ, Export: (&source{files: usingFiles}).export,
		ExportLibrary: libraryExporter(jcommonFiles, &asked)})
	f := buildErr(t, err, ErrBuildFailed)
	for _, w := range []string{"library jcommon (libs/jcommon), which the pipeline depends on, does not build", "exited with 1", "not found: type Foo"} {
		if !strings.Contains(f.Msg, w) {
			t.Errorf("error lacks %q: %s", w, f.Msg)
		}
	}
}
