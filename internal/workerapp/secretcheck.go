package workerapp

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/shipline/shipline/internal/msgauth"
)

// pollerRecent is how long ago a poller may have polled and still count as a
// running worker. A live worker starts a poll at least once a long-poll
// interval (a minute on Temporal's defaults); Temporal lists a stopped
// worker's pollers for some minutes more.
const pollerRecent = 2 * time.Minute

// checkPeerSecrets refuses to start when another worker polling queue
// advertises (msgauth.IdentityMark) a different internal message secret:
// the two would refuse each other's sealed messages, and releases would wait
// forever. Pollers that advertise no fingerprint are not judged.
func checkPeerSecrets(ctx context.Context, c client.Client, queue string, secret []byte, now time.Time) error {
	own := msgauth.Fingerprint(secret)
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := c.DescribeTaskQueue(dctx, queue, typ)
		cancel()
		if err != nil {
			return fmt.Errorf("list the pollers of task queue %s: %w", queue, err)
		}
		for _, p := range resp.GetPollers() {
			fp := msgauth.FingerprintIn(p.GetIdentity())
			if fp == "" || fp == own {
				continue
			}
			ago := "recently"
			if t := p.GetLastAccessTime(); t != nil {
				d := now.Sub(t.AsTime())
				if d > pollerRecent {
					continue
				}
				ago = d.Round(time.Second).String() + " ago"
			}
			return fmt.Errorf("another worker (identity %q, last polled %s) polls task queue %s with a different internal-message secret: "+
				"set internal_auth (secret_env or secret_file) in platform.yaml to the same secret on every worker "+
				"(its secret's fingerprint is %s, this worker's %s; a worker stopped less than %s ago still shows among the pollers)",
				p.GetIdentity(), ago, queue, fp, own, pollerRecent)
		}
	}
	return nil
}
