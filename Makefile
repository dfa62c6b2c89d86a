.PHONY: run test setup

# Set up on a fresh machine and serve the app (synthetic data unless STORECAST_DATA is set).
run:
	scripts/run.sh

# Install the test tools and run the whole suite.
test:
	scripts/test.sh

setup:
	scripts/setup.sh --dev
