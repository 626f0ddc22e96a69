package workflows

import (
	"context"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/msgauth"
)

// testWorkflowID is the ID of a test environment's workflow unless set.
const testWorkflowID = "default-test-workflow-id"

var testSecret = []byte(strings.Repeat("s", 32))

// useInternalAuth registers the real sealing activities with a test secret.
func useInternalAuth(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivity(&activities.InternalAuth{Secret: testSecret})
}

// sealed returns msg sealed for (target, name) as a Shipline worker seals it.
func sealed[T any, PT interface {
	*T
	internalMessage
}](target, name string, msg T) T {
	p := PT(&msg)
	p.setSeal(nil)
	payload, err := msgauth.Payload(p)
	if err != nil {
		panic(err)
	}
	s, err := msgauth.Make(testSecret, target, name, payload, time.Now())
	if err != nil {
		panic(err)
	}
	p.setSeal(&s)
	return msg
}

// forgedSeal is a seal made with another secret.
func forgedSeal[T any, PT interface {
	*T
	internalMessage
}](target, name string, msg T) T {
	p := PT(&msg)
	p.setSeal(nil)
	payload, _ := msgauth.Payload(p)
	s, _ := msgauth.Make([]byte(strings.Repeat("m", 32)), target, name, payload, time.Now())
	p.setSeal(&s)
	return msg
}

// recordAttempts collects what the workflow records in the project's audit.
func recordAttempts(env *testsuite.TestWorkflowEnvironment, got *[]activities.SignalWithStartInput) {
	env.RegisterActivity(&activities.Messages{})
	env.OnActivity(messageActs.SignalWithStart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalWithStartInput) error {
			*got = append(*got, in)
			return nil
		})
}
