# Shipline — common tasks. GOTOOLCHAIN=local: use the installed Go.
export GOTOOLCHAIN := local
GO ?= go

.PHONY: build demo test test-short bench lint linters weed

build:            ## bin/shipline and bin/shipline-worker
	$(GO) build -o bin/shipline ./starter
	$(GO) build -o bin/shipline-worker ./worker

demo:             ## release the example project and promote it dev → qa → prod, offline, on the embedded stack
	./examples/demo.sh

test:             ## every test: unit, workflow, activity and end-to-end
	$(GO) test -count=1 -timeout 30m ./...

test-short:       ## skip the end-to-end tests that start the embedded server
	$(GO) test -short ./...

bench:            ## benchmarks (figures in the output; see README "Benchmarks")
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m -v ./test/... ./internal/devserver/

lint: linters     ## gofmt, go vet, staticcheck and Temporal's workflowcheck (determinism of workflow code)
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt -w these files:" $$files >&2; exit 1; fi
	$(GO) vet ./...
	bin/staticcheck ./...
	bin/workflowcheck -config tools/workflowcheck.config.yaml ./...

linters:          ## bin/staticcheck and bin/workflowcheck at the versions pinned in tools/go.mod
	cd tools && GOBIN=$(CURDIR)/bin $(GO) install tool

weed:             ## bin/weed: SeaweedFS, the S3 server the storage and cluster tests start (pinned in tools/seaweedfs/go.mod)
	cd tools/seaweedfs && $(GO) build -o $(CURDIR)/bin/weed github.com/seaweedfs/seaweedfs/weed

.PHONY: cluster-test cluster-bench
cluster-test:     ## end to end on a real cluster: temporal-server on PostgreSQL, SeaweedFS S3, two workers on separate disks, kills
	./test/cluster/run.sh

cluster-bench:    ## benchmark on the same cluster: deploys/min with one shipline-worker against two, CPU per process
	CLUSTER_BENCH=1 CLUSTER_TEST_TIMEOUT=40m ./test/cluster/run.sh
