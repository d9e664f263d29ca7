// Package files saves a workspace's files to S3 when the workspace is
// released and restores them into the next workspace of the conversation.
//
// The backend does all of it; the agent in the workspace never holds S3
// credentials. A save streams the agent's GET /files tar through gzip into
// a multipart upload of a new, uniquely named snapshot object, then points
// the conversation's manifest at it. A restore reads the manifest, streams
// the one snapshot it names into the agent's PUT /files, and verifies the
// snapshot's size and SHA-256 on the way: a snapshot that does not match is
// refused before the agent can accept it. An interrupted save never
// updates the manifest, so it is never restored.
//
// Key layout, under Options.Prefix:
//
//	<tenant>/<conversation>/manifest.json
//	<tenant>/<conversation>/snapshots/<UTC time>-<random>.tar.gz
//
// See docs/files.md.
package files
