package codec

import (
	"fmt"
	"os"
	"strings"
)

// WorkerMark ends the Temporal identity of a worker that encrypts payloads,
// as its task queue's pollers show it. A client without keys that sees it
// knows that what it would send (a release message, job definitions) would
// be written to history in plain text, and sends nothing.
const WorkerMark = "(payloads encrypted)"

// WorkerIdentity is the SDK's default identity (pid@host@) followed by marks
// (each a parenthesized note other processes read from the task queue's
// pollers, such as msgauth.IdentityMark), then by WorkerMark when c encrypts.
// WorkerMark stays last: MarksEncryption looks for it at the end.
func (c *Codec) WorkerIdentity(marks ...string) string {
	host, _ := os.Hostname()
	id := fmt.Sprintf("%d@%s@", os.Getpid(), host)
	for _, m := range marks {
		id += " " + m
	}
	if c.Enabled() {
		id += " " + WorkerMark
	}
	return id
}

// MarksEncryption says whether a poller identity is that of a worker that
// encrypts payloads.
func MarksEncryption(identity string) bool { return strings.HasSuffix(identity, WorkerMark) }
