// Package manifest reads shipline.yaml, the project file owned by the project's
// developers: its pipelines, its jobs and per-fabric overrides.
package manifest

// FileName is the manifest's name at the project root.
const FileName = "shipline.yaml"

// Manifest is a parsed and validated shipline.yaml.
type Manifest struct {
	Name      string               `json:"name"`
	Variables map[string]string    `json:"variables,omitempty"`
	Pipelines map[string]Pipeline  `json:"pipelines"`
	Jobs      map[string]Job       `json:"jobs"`
	Fabrics   map[string]Overrides `json:"fabrics,omitempty"`
	// Libraries are packages the pipelines share, published to package indexes (libraries.go).
	Libraries map[string]Library `json:"libraries,omitempty"`

	// src remembers where things are in shipline.yaml and which placeholders each
	// job's definition uses, so CheckPlatform can point at them. It is set by
	// Parse/Load and is not serialized: a Manifest decoded from JSON is checked
	// with field names instead of positions, and without its placeholders.
	src *source
}

// Language of a pipeline.
type Language string

const (
	Python Language = "python"
	Scala  Language = "scala"
	Java   Language = "java"
)

// Pipeline is a directory that builds into one artifact.
type Pipeline struct {
	Name     string   `json:"name"`
	Path     string   `json:"path"` // slash-separated, relative to the project root, inside it
	Language Language `json:"language"`
	Build    string   `json:"build,omitempty"`    // custom build command (scala/java)
	Artifact string   `json:"artifact,omitempty"` // glob of the built artifact, relative to Path
	Test     string   `json:"test,omitempty"`     // custom test command
	// Version, set only when a library is built (Library.AsPipeline), is the
	// version the artifact is built as (the release's, e.g. 1.2.0) instead of
	// the declared version with its content label.
	Version string `json:"version,omitempty"`
	// Group is a JVM library's Maven groupId (with Version only).
	Group string `json:"group,omitempty"`
	// Uses are the project's libraries a pipeline depends on (deps.go), at
	// the same commit: a Python pipeline's Python libraries, importable by
	// its tests; a Java or Scala pipeline's JVM libraries, on its compile
	// and test classpath. Set by Load.
	Uses []UsedLibrary `json:"uses,omitempty"`
}

// UsedLibrary is a library of the project that a pipeline's build uses.
type UsedLibrary struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Tree is the git tree hash of Path at the build's commit (set by the
	// build activity; part of the build's cache key).
	Tree string `json:"tree,omitempty"`
	// Build and Artifact are a JVM library's build command and jar glob
	// (empty for a library built by convention, and for Python libraries).
	Build    string `json:"build,omitempty"`
	Artifact string `json:"artifact,omitempty"`
}

// Scheduler runs a job.
type Scheduler string

const (
	Databricks Scheduler = "databricks"
	Airflow    Scheduler = "airflow"
)

// Job is a schedulable unit running pipelines.
type Job struct {
	Name       string    `json:"name"`
	Scheduler  Scheduler `json:"scheduler"`
	Fabric     string    `json:"fabric"`
	Pipelines  []string  `json:"pipelines"`
	Definition string    `json:"definition"` // slash-separated, relative to the project root
}

// Overrides are non-secret per-fabric settings.
type Overrides struct {
	Variables map[string]string      `json:"variables,omitempty"`
	Jobs      map[string]JobOverride `json:"jobs,omitempty"`
}

// JobOverride changes one job on one fabric.
type JobOverride struct {
	// Paused overrides the fabric's pause_schedules for this job; nil leaves it.
	Paused *bool `json:"paused,omitempty"`
}
