// Package images holds the tests of the local images that build.sh makes
// (`make images`): they start workspaced/workspace:test hardened the way
// the Docker runtime starts a workspace and drive its agent from the host.
package images
