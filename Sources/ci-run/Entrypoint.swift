import ExecutorCLI

// gitlab-runner's run_exec. All logic lives in ExecutorCLI/ExecutorCore.
DriverMain.run(RunCommand.self)
