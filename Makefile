# sandtrail developer targets. `make help` lists them.
GO ?= go
PKGS ?= ./...

.PHONY: help build test race lint fuzz bench integration generate check-generated ci

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build the sandtrail binary (static, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -o sandtrail ./cmd/sandtrail

test: ## run the tests (the README's test command)
	$(GO) test -race -count=1 $(PKGS)

race: ## run the tests with the race detector, several times
	$(GO) test -race -count=3 $(PKGS)

lint: ## gofmt, go vet and go mod tidy checks
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff

fuzz: ## fuzz the validator and the differential check for 60s each
	$(GO) test ./schema -run '^$$' -fuzz FuzzValidate -fuzztime 60s
	$(GO) test ./schema/jsonschema -run '^$$' -fuzz FuzzDifferential -fuzztime 60s
	$(GO) test ./supervisor/policy -run '^$$' -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 3s

bench: ## run the benchmarks; each prints a ratio table against its same-run baseline (docs/BENCHMARKS.md)
	mkdir -p bench/out
	$(GO) test ./schema/jsonschema -run '^$$' -bench Validate -benchmem -count 5 | tee bench/out/schema.txt
	$(GO) run ./internal/benchratio -baseline gojsonschema < bench/out/schema.txt
	bash bench/launch.sh

integration: ## the end-to-end tests only
	$(GO) test -race -count=1 -run Integration $(PKGS)

generate: ## regenerate schema/ from the compiled OCSF schema beside the checkout (go generate ./schema)
	$(GO) generate ./schema

check-generated: ## fail if the committed generated files differ from a fresh generation
	bash .ci/check-generated

ci: ## what CI runs
	bash .ci/run
