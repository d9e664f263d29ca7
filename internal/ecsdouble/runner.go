package ecsdouble

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// runner makes tasks real (Docker) or pretends to (simulation). The driver
// goroutine of a task calls attach, run, stopContainers and release in that
// order; exit may be called from anywhere.
type runner interface {
	// attach provisions the task's network namespace and returns its IP.
	attach(ctx context.Context, t *task) (string, error)
	// run starts the containers in dependsOn order and returns a channel
	// that yields when an essential container exits on its own.
	run(ctx context.Context, t *task) (<-chan exitInfo, error)
	// stopContainers stops every container (dependents first) and returns
	// their exit codes by name.
	stopContainers(ctx context.Context, t *task) map[string]int
	// release frees the task's resources (containers, namespace).
	release(ctx context.Context, t *task)
	// exit simulates an essential container's process ending.
	exit(t *task, container string, code int) error
}

// simRunner is the Docker-less runner: fake IPs, containers that "run"
// until stopped or told to exit.
type simRunner struct {
	d *Double

	mu    sync.Mutex
	exits map[*task]chan exitInfo
}

func (s *simRunner) attach(_ context.Context, t *task) (string, error) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	n := s.d.nextIP
	s.d.nextIP++
	return fmt.Sprintf("10.0.%d.%d", 1+n/250%250, 4+n%250), nil
}

func (s *simRunner) run(_ context.Context, t *task) (<-chan exitInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exits == nil {
		s.exits = map[*task]chan exitInfo{}
	}
	ch := make(chan exitInfo, 1)
	s.exits[t] = ch
	return ch, nil
}

func (s *simRunner) stopContainers(context.Context, *task) map[string]int {
	return nil
}

func (s *simRunner) release(_ context.Context, t *task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.exits, t)
}

func (s *simRunner) exit(t *task, container string, code int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.exits[t]
	if !ok {
		return errors.New("task is not running")
	}
	select {
	case ch <- exitInfo{container: container, code: code}:
		return nil
	default:
		return errors.New("task is already exiting")
	}
}

// startOrder sorts container definitions so that every container comes
// after the containers it depends on.
func startOrder(defs []ContainerDefinition) ([]ContainerDefinition, error) {
	byName := map[string]ContainerDefinition{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	var out []ContainerDefinition
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("dependsOn cycle through %s", name)
		case 2:
			return nil
		}
		def, ok := byName[name]
		if !ok {
			return fmt.Errorf("dependsOn names unknown container %s", name)
		}
		state[name] = 1
		for _, dep := range def.DependsOn {
			if err := visit(dep.ContainerName); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, def)
		return nil
	}
	for _, d := range defs {
		if err := visit(d.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}
