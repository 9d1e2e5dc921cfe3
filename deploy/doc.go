// Package deploy holds the deployment artifacts (container image, compose,
// systemd, nginx, release script) and, in its tests, the checks that build
// and run them on this machine: deploy_test.go (shared helpers, .env.example,
// systemd), nginx_test.go, docker_test.go. It has no code of its own.
package deploy
