.PHONY: run test setup image image-check

# Set up on a fresh machine and serve the app (synthetic data unless STORECAST_DATA is set).
run:
	scripts/run.sh

# Install the test tools and run the whole suite.
test:
	scripts/test.sh

setup:
	scripts/setup.sh --dev

# Build the image (docker, else podman with a base made from Debian's packages when none can be pulled).
image:
	scripts/image.sh

# The release check: the built images run for real on loopback (podman, podman-compose).
image-check:
	scripts/image_check.sh
