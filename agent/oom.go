package agent

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// RunOOMScoreAdj is the oom_score_adj of every process a run starts: above
// the agent's own (the container's, normally 0), so that when the
// workspace's memory runs out the kernel kills the user's process, not the
// agent (docs/contracts.md §6).
const RunOOMScoreAdj = 500

// oomMu serialises process starts that raise the agent's own score for a
// moment: oom_score_adj belongs to the process (all its threads), so it is
// process-wide state.
var oomMu sync.Mutex

const oomScoreAdjPath = "/proc/self/oom_score_adj"

// startRaised starts cmd with RunOOMScoreAdj from its first instruction:
// the agent raises its own score (no privilege needed to raise), forks,
// and lowers it back (allowed down to the value a privileged process set,
// the one it had). Where /proc is missing or the score is already that
// high it just starts cmd.
func startRaised(cmd *exec.Cmd) error {
	oomMu.Lock()
	defer oomMu.Unlock()
	own, err := readOOMScoreAdj()
	if err != nil || own >= RunOOMScoreAdj {
		return cmd.Start()
	}
	if err := writeOOMScoreAdj(RunOOMScoreAdj); err != nil {
		return cmd.Start()
	}
	startErr := cmd.Start()
	if err := writeOOMScoreAdj(own); err != nil {
		// Cannot happen while own is at or above the minimum the kernel
		// keeps; if it does, the agent is no safer than its runs.
		if startErr == nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		return fmt.Errorf("restore the agent's oom_score_adj %d: %w", own, err)
	}
	return startErr
}

func readOOMScoreAdj() (int, error) {
	b, err := os.ReadFile(oomScoreAdjPath)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func writeOOMScoreAdj(v int) error {
	return os.WriteFile(oomScoreAdjPath, []byte(strconv.Itoa(v)), 0)
}
