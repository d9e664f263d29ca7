package files_test

func runMemoryChild() bool { return false }
