package fabric

import "errors"

// ErrJobNotDeployed is in the chain of a run operation's error when the job
// is not on the fabric (never deployed there, or deleted by hand): it has no
// runs. Match it with errors.Is.
var ErrJobNotDeployed = errors.New("the job is not deployed on the fabric")
