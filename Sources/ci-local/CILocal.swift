import ArgumentParser
import RunnerEmulator

/// ci-local: runs a .gitlab-ci.yml on this machine through the four driver executables,
/// exactly as gitlab-runner's custom executor would call them.
@main
struct CILocal: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ci-local",
    abstract: "Run a .gitlab-ci.yml pipeline here through the ci-slurm executor (no GitLab server needed).",
    discussion: """
      Jobs run through ci-config, ci-prepare, ci-run and ci-cleanup as gitlab-runner runs them. \
      When ci-worker sits beside ci-local (a swift build), that folder comes first on the jobs' PATH, \
      so `ci-worker ...` in a script runs the build's own. With --jobs above 1 every output line \
      starts with [job name]. Colour only on a terminal, or with --color.
      """)

  enum Backend: String, ExpressibleByArgument, CaseIterable {
    case local, slurm
  }

  @Argument(help: "The pipeline file.") var file: String = ".gitlab-ci.yml"
  @Option(name: .long, help: "Run only this job (repeatable); its needs are not run.") var job: [String] = []
  @Option(name: .long, help: "How many jobs run at once (above 1, each live line gets a [job name] prefix).") var jobs: Int = 4
  @Option(
    name: .long,
    help: "local (jobs run as processes here, no Slurm needed) or slurm; sets CI_SLURM_BACKEND for the phases (default: the driver's setting, auto: Slurm when sbatch is on PATH).")
  var backend: Backend?
  @Flag(name: .long, help: "Colour even when stdout is not a terminal.") var color = false
  @Option(name: .long, help: "The project directory copied into each job (default: the pipeline file's folder).") var project: String?
  @Option(name: .long, help: "The project path, as GitLab's CI_PROJECT_PATH.") var projectPath: String?
  @Option(name: .long, help: "Folder holding ci-config, ci-prepare, ci-run, ci-cleanup (default: next to ci-local).") var executorDir: String?
  @Option(name: .long, help: "Seconds between the runner's SIGTERM and SIGKILL to a phase.") var gracefulKillTimeout: Double = 30
  @Option(name: .long, help: "A job's timeout when it sets none, in seconds.") var defaultTimeout: Int = 3600
  @Option(name: .long, help: "Set a variable for every job, NAME=VALUE (repeatable).") var variable: [String] = []
  @Option(name: .long, help: "An RSA private key (PEM) to sign the jobs' id_tokens with, as GitLab would; its JWKS goes to --jwks-out.") var idTokenKey: String?
  @Option(name: .long, help: "Write the JWKS of --id-token-key here, for the driver's run_as.jwks_file.") var jwksOut: String?
  @Option(name: .long, help: "The id_tokens' issuer (the driver's run_as.issuer).") var idTokenIssuer: String = "https://gitlab.ci-local"
  @Option(name: .long, help: "The GitLab login jobs run for (GITLAB_USER_LOGIN and the tokens' user_login; default $USER).") var user: String?
  @Flag(name: .long, help: "List the jobs and their order, run nothing.") var list = false

  func run() async throws {
    var request = LocalRun()
    request.file = file
    request.only = job
    request.concurrency = jobs
    request.backend = backend?.rawValue
    request.colour = color
    (request.project, request.projectPath, request.executorDirectory) = (project, projectPath, executorDir)
    (request.gracefulKillTimeout, request.defaultTimeout) = (gracefulKillTimeout, defaultTimeout)
    request.variables = variable
    (request.idTokenKey, request.jwksOut, request.idTokenIssuer) = (idTokenKey, jwksOut, idTokenIssuer)
    request.user = user
    request.listOnly = list
    let status: Int32
    do {
      status = try await request.run()
    } catch let error as LocalRun.UsageError {
      throw ValidationError(error.description)
    }
    if status != 0 { throw ExitCode(status) }
  }
}
