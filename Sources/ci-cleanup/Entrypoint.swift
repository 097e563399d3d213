import ExecutorCLI

// gitlab-runner's cleanup_exec. All logic lives in ExecutorCLI/ExecutorCore.
DriverMain.run(CleanupCommand.self)
