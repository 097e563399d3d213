import ExecutorCLI

// gitlab-runner's prepare_exec. All logic lives in ExecutorCLI/ExecutorCore.
DriverMain.run(PrepareCommand.self)
