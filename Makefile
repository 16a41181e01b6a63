# The two commands of the README. Each installs what it needs first, and is safe to run again.
.PHONY: run test stack-down

# Brings up the local stack and runs a short Code-A1 training run on the built-in problems.
run:
	infra/main.sh

# Every test suite, against a real Temporal dev server and a real S3 server.
test:
	infra/test.sh

stack-down:
	npx code-a1 stack down
