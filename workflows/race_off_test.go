//go:build !race

package workflows

// raceDetector tells tests that the race detector is on.
const raceDetector = false
