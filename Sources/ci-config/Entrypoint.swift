import ExecutorCLI

// gitlab-runner's config_exec. All logic lives in ExecutorCLI/ExecutorCore.
DriverMain.run(ConfigCommand.self)
