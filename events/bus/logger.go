package bus

import (
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// NewWatermillLogger adapts l for Watermill, demoting Watermill's Info (one
// line per subscription, handler start, router state) to Debug. Errors stay
// errors. A nil l means slog.Default().
func NewWatermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
}
