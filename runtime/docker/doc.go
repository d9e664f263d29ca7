// Package docker is the Docker-engine workspace runtime: it starts one
// hardened container per workspace (docs/contracts.md §6), reaches its agent over a
// bind-mounted Unix socket, and turns the engine's event stream into the
// same task-state envelope ECS emits (docs/contracts.md §4.2).
//
// Runtime (Start, Stop, Inspect, List, Transport) satisfies the workers'
// Runtime interface; Watcher is the event side and runs on its own (Run).
// Neither reads the environment: cmd builds Options from config.
//
// On the host a workspace is:
//   - a container named NamePrefix+token, labelled io.workspaced.* (see the
//     Label constants), running Options.Image as uid 1000 with no network,
//     a read-only root, six tmpfs mounts, four capabilities, seccomp and
//     no-new-privileges;
//   - a socket directory <SocketBasePath>/<token> (0750, owned by uid 1000),
//     the only host path mounted into the container (at /var/run/ws). The
//     agent listens on agent.sock there; the in-process credential proxy,
//     when configured, listens on proxy.sock.
package docker
