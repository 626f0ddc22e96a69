# Shipline — common tasks. GOTOOLCHAIN=local: use the installed Go.
export GOTOOLCHAIN := local
GO ?= go

.PHONY: build demo test test-short bench lint

build:            ## bin/shipline and bin/shipline-worker
	$(GO) build -o bin/shipline ./starter
	$(GO) build -o bin/shipline-worker ./worker

demo:             ## release the example project on the embedded Temporal stack
	./examples/demo.sh

test:             ## every test: unit, workflow, activity and end-to-end
	$(GO) test -count=1 -timeout 20m ./...

test-short:       ## skip the end-to-end tests that start the embedded server
	$(GO) test -short ./...

bench:            ## benchmarks (figures in the output; see README "Benchmarks")
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m -v ./test/... ./internal/devserver/

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet ./...

.PHONY: cluster-test
cluster-test:     ## end to end on a real cluster: temporal-server from the Go module on PostgreSQL, two workers, one killed
	./test/cluster/run.sh
