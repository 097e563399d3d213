public import ChildProcesses
public import CustomExecutorAPI
public import JobIdentity
public import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Where the four driver executables are.
public struct ExecutorPaths: Sendable {
  public var config: String
  public var prepare: String
  public var run: String
  public var cleanup: String

  public init(directory: String) {
    config = "\(directory)/ci-config"
    prepare = "\(directory)/ci-prepare"
    run = "\(directory)/ci-run"
    cleanup = "\(directory)/ci-cleanup"
  }
}

/// The runner-side settings ci-local plays with ([runners.custom] in config.toml).
public struct RunnerSettings: Sendable {
  /// Time between SIGTERM and SIGKILL to a phase's process group.
  public var gracefulKillTimeout: TimeInterval = 30
  /// The runner waits 3 s between preparation attempts.
  public var preparationRetryDelay: TimeInterval = 3
  public var defaultJobTimeout = 3600
  /// Signs the jobs' `id_tokens:` as GitLab would (nil: jobs that ask for one get none).
  public var idTokens: IDTokenIssuer?
  /// GITLAB_USER_LOGIN (and the tokens' user_login).
  public var userLogin = ProcessInfo.processInfo.environment["USER"] ?? "local"
  /// The runner's own environment as the phases inherit it.
  public var baseEnvironment: [String: String] = ProcessInfo.processInfo.environment

  public init() {}
}

/// How a job ended, with what the runner would tell GitLab.
public struct JobResult: Sendable {
  public enum Status: String, Sendable { case success, failed, canceled, timedout, skipped }
  public var job: String
  public var status: Status
  /// script_failure, runner_system_failure, job_execution_timeout...
  public var failureReason: String?
  public var exitCode: Int32?
  public var message: String?
  public var duration: TimeInterval
  public var ciJobID: Int
  public var schedulerJobs: [String]
  public var logFile: String
  public var allowedToFail: Bool

  public var passed: Bool { status == .success }
}

/// Plays gitlab-runner's part for one job: temp dir, response.json, environment assembly,
/// config/prepare with 3 attempts, the stages in order, exit-code classification, SIGTERM
/// then SIGKILL to the phase's process group on timeout or when its task is cancelled
/// (Ctrl-C), cleanup always.
public struct JobRunner: Sendable {
  let job: PipelineJob
  let ciJobID: Int
  let pipelineID: Int
  let projectDirectory: String
  let projectPath: String
  let executor: ExecutorPaths
  let settings: RunnerSettings
  let log: JobLog
  let artifactStore: String
  let dependencyStores: [String]

  public init(
    job: PipelineJob, ciJobID: Int, pipelineID: Int, projectDirectory: String, projectPath: String,
    executor: ExecutorPaths, settings: RunnerSettings, log: JobLog, artifactStore: String,
    dependencyStores: [String]
  ) {
    self.job = job
    self.ciJobID = ciJobID
    self.pipelineID = pipelineID
    self.projectDirectory = projectDirectory
    self.projectPath = projectPath
    self.executor = executor
    self.settings = settings
    self.log = log
    self.artifactStore = artifactStore
    self.dependencyStores = dependencyStores
  }

  enum PhaseOutcome: Equatable {
    case ok
    case build(Int32)
    case system(String)
    case timedOut
    case stopped
  }

  struct Failure: Error { var outcome: PhaseOutcome }

  var timeoutSeconds: Int { job.timeoutSeconds ?? settings.defaultJobTimeout }

  /// The job's variables as the runner hands them to the driver (without the prefix).
  func variables(buildsDirectory: String?, status: String) -> [(String, String)] {
    let slug = projectPath.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
    let namespace = projectPath.split(separator: "/").dropLast().joined(separator: "/")
    let name = projectPath.split(separator: "/").last.map(String.init) ?? "project"
    var list: [(String, String)] = [
      ("CI", "true"), ("GITLAB_CI", "true"), ("CI_SERVER", "yes"),
      ("CI_JOB_ID", String(ciJobID)), ("CI_JOB_NAME", job.name), ("CI_JOB_STAGE", job.stage),
      ("CI_JOB_TIMEOUT", String(timeoutSeconds)), ("CI_JOB_STATUS", status),
      ("CI_PIPELINE_ID", String(pipelineID)), ("CI_PIPELINE_SOURCE", "web"),
      ("CI_PROJECT_PATH", projectPath), ("CI_PROJECT_PATH_SLUG", String(slug)),
      ("CI_PROJECT_NAME", name), ("CI_PROJECT_NAMESPACE", namespace),
      ("CI_COMMIT_SHA", "0000000000000000000000000000000000000000"), ("CI_COMMIT_REF_NAME", "local"),
      ("CI_CONCURRENT_ID", "0"), ("CI_CONCURRENT_PROJECT_ID", "0"),
      ("GITLAB_USER_LOGIN", settings.userLogin),
      ("CI_RUNNER_VERSION", "ci-local"), ("CI_JOB_SERVICES", ""),
    ]
    if let issuer = settings.idTokens {
      for request in job.idTokens {
        // A job asking for a token ci-local cannot sign fails at run, as a driver's refusal.
        if let token = try? issuer.token(
          audiences: request.audiences, jobID: ciJobID, pipelineID: pipelineID, projectPath: projectPath,
          userLogin: settings.userLogin, timeout: timeoutSeconds)
        {
          list.append((request.variable, token))
        }
      }
    }
    if let buildsDirectory {
      let project = "\(buildsDirectory)/\(projectPath)"
      list += [("CI_BUILDS_DIR", buildsDirectory), ("CI_PROJECT_DIR", project), ("RUNNER_TEMP_PROJECT_DIR", project + ".tmp")]
    } else {
      list += [("CI_BUILDS_DIR", ""), ("CI_PROJECT_DIR", ""), ("RUNNER_TEMP_PROJECT_DIR", ".tmp")]
    }
    // Pipeline and job variables, expanded against what came before (as the runner does).
    var known = Dictionary(list, uniquingKeysWith: { _, b in b })
    for pair in job.variables {
      let value = VariableExpansion.expand(pair.value, with: known)
      known[pair.name] = value
      list.append((pair.name, value))
    }
    return list
  }

  public func run() async -> JobResult {
    let started = Date()
    let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
    var result = JobResult(
      job: job.name, status: .success, failureReason: nil, exitCode: nil, message: nil, duration: 0,
      ciJobID: ciJobID, schedulerJobs: [], logFile: log.path, allowedToFail: job.allowFailure)
    log.line("Running with ci-local (plays gitlab-runner's custom executor), job \(ciJobID): \(job.name)")

    var prepared: (tmp: String, env: [String: String], buildsDirectory: String)? = nil
    var lastFailure = PhaseOutcome.system("preparation failed")
    log.header("Preparing the \"custom\" executor")
    for attempt in 1...3 {
      if Task.isCancelled { lastFailure = .stopped; break }
      do {
        prepared = try await prepare(deadline: deadline)
        break
      } catch let failure as Failure {
        lastFailure = failure.outcome
        if case .build = failure.outcome { break }
        if case .stopped = failure.outcome { break }
        if case .timedOut = failure.outcome { break }
        if attempt < 3 {
          log.line("ERROR: Preparation failed: \(describe(failure.outcome))")
          log.line("Will be retried in \(Int(settings.preparationRetryDelay))s ...")
          // A cancel ends the wait at once; the next attempt then reports the stop.
          try? await Task.sleep(for: .seconds(settings.preparationRetryDelay))
        }
      } catch {
        lastFailure = .system("\(error)")
      }
    }

    var failure: PhaseOutcome? = nil
    if let prepared {
      failure = await runStages(tmp: prepared.tmp, env: prepared.env, buildsDirectory: prepared.buildsDirectory, deadline: deadline)
      result.schedulerJobs = schedulerJobs(ledger: prepared.env[DriverVariable.jobsLedger])
      await runCleanup(tmp: prepared.tmp, env: prepared.env)
    } else {
      failure = lastFailure
    }

    switch failure {
    case nil: result.status = .success
    case .build(let code)?:
      result.status = .failed
      result.failureReason = "script_failure"
      result.exitCode = code
      if job.allowedExitCodes.contains(code) { result.allowedToFail = true }
    case .system(let message)?:
      result.status = .failed
      result.failureReason = "runner_system_failure"
      result.message = message
    case .timedOut?:
      result.status = .timedout
      result.failureReason = "job_execution_timeout"
      result.message = "execution took longer than \(timeoutSeconds) seconds"
    case .stopped?:
      result.status = .canceled
      result.failureReason = "canceled"
    case .ok?:
      result.status = .success
    }
    result.duration = Date().timeIntervalSince(started)
    switch result.status {
    case .success: log.line("\u{1b}[32;1mJob succeeded\u{1b}[0;m")
    case .failed where result.failureReason == "runner_system_failure":
      log.line("\u{1b}[31;1mERROR: Job failed (system failure): \(result.message ?? "")\u{1b}[0;m")
    case .failed: log.line("\u{1b}[31;1mERROR: Job failed: exit code \(result.exitCode ?? 1)\u{1b}[0;m")
    case .timedout: log.line("\u{1b}[31;1mERROR: Job failed: \(result.message ?? "")\u{1b}[0;m")
    case .canceled: log.line("\u{1b}[31;1mERROR: Job canceled\u{1b}[0;m")
    case .skipped: break
    }
    return result
  }

  func describe(_ outcome: PhaseOutcome) -> String {
    switch outcome {
    case .ok: return "ok"
    case .build(let code): return "exit code \(code)"
    case .system(let message): return message
    case .timedOut: return "timed out"
    case .stopped: return "stopped"
    }
  }

  /// One preparation attempt: temp dir, response.json, config_exec, prepare_exec.
  func prepare(deadline: ContinuousClock.Instant) async throws -> (tmp: String, env: [String: String], buildsDirectory: String) {
    let tmp = try TemporaryDirectory.make(prefix: "custom-executor")
    let response = JobResponse.json(id: ciJobID, name: job.name, stage: job.stage, projectPath: projectPath,
                                    timeout: timeoutSeconds, variables: variables(buildsDirectory: nil, status: "running"),
                                    script: job.beforeScript + job.script, afterScript: job.afterScript)
    FileManager.default.createFile(atPath: "\(tmp)/response.json", contents: response, attributes: [.posixPermissions: 0o600])
    var base = settings.baseEnvironment
    base["TMPDIR"] = tmp
    base[RunnerVariable.buildFailureExitCode] = "1"
    base[RunnerVariable.systemFailureExitCode] = "2"
    base[RunnerVariable.buildExitCodeFile] = "\(tmp)/build_exit_code"
    base[RunnerVariable.jobResponseFile] = "\(tmp)/response.json"
    var configEnv = base
    for (key, value) in variables(buildsDirectory: nil, status: "running") { configEnv[RunnerVariable.jobPrefix + key] = value }

    let configRun = await runPhase([executor.config], env: configEnv, cwd: tmp, deadline: deadline, capture: true)
    let configOutcome = classify(configRun, tmp: tmp)
    let stdout = configRun.stdout
    guard configOutcome == .ok else {
      await runCleanup(tmp: tmp, env: configEnv)
      throw Failure(outcome: configOutcome)
    }
    let config: ConfigExecOutput
    do {
      config = try ConfigJSON.parse(stdout)
    } catch {
      await runCleanup(tmp: tmp, env: configEnv)
      throw Failure(outcome: .system("error while parsing JSON output: \(error)"))
    }
    guard let builds = config.buildsDir, !builds.isEmpty else {
      throw Failure(outcome: .system("the builds_dir is not configured"))
    }
    guard let cache = config.cacheDir, !cache.isEmpty else {
      throw Failure(outcome: .system("the cache_dir is not configured"))
    }
    if let driver = config.driver {
      log.line("Using Custom executor with driver \(driver.name) \(driver.version)...")
    } else {
      log.line("Using Custom executor...")
    }
    var env = base
    for (key, value) in config.jobEnv ?? [:] { env[key] = value }
    for (key, value) in variables(buildsDirectory: builds, status: "running") { env[RunnerVariable.jobPrefix + key] = value }
    let prepareOutcome = classify(await runPhase([executor.prepare], env: env, cwd: tmp, deadline: deadline, capture: false), tmp: tmp)
    guard prepareOutcome == .ok else {
      if case .build = prepareOutcome {} else { await runCleanup(tmp: tmp, env: env) }
      throw Failure(outcome: prepareOutcome)
    }
    return (tmp, env, builds)
  }

  func runStages(tmp: String, env: [String: String], buildsDirectory: String, deadline: ContinuousClock.Instant) async -> PhaseOutcome? {
    let hostname = ProcessInfo.processInfo.hostName
    let project = "\(buildsDirectory)/\(projectPath)"
    var vars = variables(buildsDirectory: buildsDirectory, status: "running")

    func stage(
      _ name: String, header: String, _ script: String, env stageEnv: [String: String]? = nil, until: ContinuousClock.Instant? = nil
    ) async -> PhaseOutcome {
      let stageEnd = until ?? deadline
      if Task.isCancelled { return .stopped }
      if ContinuousClock.now >= stageEnd { return .timedOut }
      log.header(header)
      do {
        let directory = try TemporaryDirectory.make(prefix: "script", in: tmp)
        let path = "\(directory)/script"
        FileManager.default.createFile(atPath: path, contents: Data(script.utf8), attributes: [.posixPermissions: 0o700])
        return classify(await runPhase([executor.run, path, name], env: stageEnv ?? env, cwd: tmp, deadline: stageEnd, capture: false), tmp: tmp)
      } catch {
        return .system("cannot write the stage script: \(error)")
      }
    }

    var outcome = await stage("prepare_script", header: "Preparing environment", ScriptWriter.prepareScript(hostname: hostname))
    if outcome != .ok { return outcome }
    outcome = await stage("get_sources", header: "Getting source from Git repository",
                    ScriptWriter.getSources(variables: vars, source: projectDirectory, projectDirectory: project))
    if outcome == .ok, !dependencyStores.isEmpty {
      outcome = await stage("download_artifacts", header: "Downloading artifacts",
                      ScriptWriter.downloadArtifacts(variables: vars, projectDirectory: project, stores: dependencyStores))
    }
    var jobFailure: PhaseOutcome? = outcome == .ok ? nil : outcome
    if outcome == .ok {
      let user = await stage("build_script", header: "Executing \"step_script\" stage of the job script",
                       ScriptWriter.userScript(variables: vars, projectDirectory: project, commands: job.beforeScript + job.script),
                       until: stageDeadline(StageTimeouts.script, defaultSeconds: nil, variables: vars, jobDeadline: deadline))
      if user != .ok { jobFailure = user }
      // The job's own timeout ends everything; RUNNER_SCRIPT_TIMEOUT's leaves after_script.
      if !job.afterScript.isEmpty && !(jobFailure == .timedOut && ContinuousClock.now >= deadline)
        && !(jobFailure == .stopped && Task.isCancelled)
      {
        let status: String
        switch jobFailure {
        case nil: status = "success"
        case .timedOut?: status = "timedout"
        case .stopped?: status = "canceled"
        default: status = "failed"
        }
        vars = variables(buildsDirectory: buildsDirectory, status: status)
        var afterEnv = env
        afterEnv["CUSTOM_ENV_CI_JOB_STATUS"] = status
        // after_script has its own limit (5 minutes unless RUNNER_AFTER_SCRIPT_TIMEOUT says
        // otherwise) inside the job's, and its failure is ignored.
        let afterDeadline = stageDeadline(
          StageTimeouts.afterScript, defaultSeconds: StageTimeouts.defaultAfterScriptSeconds, variables: vars, jobDeadline: deadline)
        if !Task.isCancelled {
          log.header("Running after_script")
          if let directory = try? TemporaryDirectory.make(prefix: "script", in: tmp) {
            let path = "\(directory)/script"
            FileManager.default.createFile(
              atPath: path, contents: Data(ScriptWriter.afterScript(variables: vars, projectDirectory: project, commands: job.afterScript).utf8),
              attributes: [.posixPermissions: 0o700])
            let afterRun = await runPhase([executor.run, path, "after_script"], env: afterEnv, cwd: tmp, deadline: afterDeadline, capture: false)
            if classify(afterRun, tmp: tmp) != .ok { log.line("WARNING: after_script failed, but the job continues") }
          }
        }
      }
    }
    // A failed job keeps its paths only with artifacts:when on_failure or always, and its
    // reports whatever the outcome, as gitlab-runner's upload_artifacts_on_failure does.
    let keepsPaths = jobFailure == nil ? job.artifactsWhen != .onFailure : job.artifactsWhen != .onSuccess
    let uploaded = (keepsPaths ? job.artifactPaths : []) + job.reportPaths
    if !uploaded.isEmpty {
      let upload = await stage(
        jobFailure == nil ? "upload_artifacts_on_success" : "upload_artifacts_on_failure",
        header: jobFailure == nil ? "Uploading artifacts for successful job" : "Uploading artifacts for failed job",
        ScriptWriter.uploadArtifacts(variables: vars, projectDirectory: project, paths: uploaded, store: artifactStore))
      if upload != .ok && jobFailure == nil { jobFailure = upload }
    }
    if !Task.isCancelled && ContinuousClock.now < deadline {
      _ = await stage("cleanup_file_variables", header: "Cleaning up project directory and file based variables",
                ScriptWriter.cleanupFileVariables(variables: vars, projectDirectory: project))
    }
    return jobFailure
  }

  /// When a stage with its own timeout variable must end, read as the runner reads it
  /// (`getStageTimeoutContexts`): inside the job's deadline, with the runner's warning for a
  /// value it ignores.
  func stageDeadline(
    _ name: String, defaultSeconds: Double?, variables: [(String, String)], jobDeadline: ContinuousClock.Instant
  ) -> ContinuousClock.Instant {
    let text = variables.last { $0.0 == name }?.1
    let left = ContinuousClock.now.duration(to: jobDeadline)
    let reading = StageTimeouts.read(text, jobLeft: Double(left.components.seconds))
    if let warning = StageTimeouts.runnerWarning(reading, name: name, text: text) { log.line("WARNING: \(warning)") }
    var seconds = defaultSeconds
    if case .seconds(let value) = reading { seconds = value }
    guard let seconds else { return jobDeadline }
    return min(jobDeadline, ContinuousClock.now + .milliseconds(Int64(seconds * 1000)))
  }

  /// cleanup_exec: its own timeout, not tied to the job's, and not stopped by a cancel (the
  /// runner always cleans up); output to ci-local's log only.
  func runCleanup(tmp: String, env: [String: String]) async {
    let cleanup = await runPhase(
      [executor.cleanup], env: env, cwd: tmp, deadline: ContinuousClock.now + .seconds(300), capture: false, stoppable: false)
    if cleanup.status != .exited(0) { log.line("WARNING: Cleanup script failed: \(cleanup.status)") }
    try? FileManager.default.removeItem(atPath: tmp)
  }

  func runPhase(
    _ arguments: [String], env: [String: String], cwd: String, deadline: ContinuousClock.Instant, capture: Bool, stoppable: Bool = true
  ) async -> PhaseRun {
    await PhaseProcess.run(
      arguments, env: env, cwd: cwd, deadline: deadline, gracePeriod: .seconds(settings.gracefulKillTimeout), capture: capture,
      stoppable: stoppable, log: log)
  }

  /// The scheduler jobs the driver submitted for this CI job, read from the pipeline's jobs
  /// ledger at the path config_exec's `job_env` gave (the driver's own record, not its log
  /// lines). Empty when the driver kept no ledger.
  func schedulerJobs(ledger: String?) -> [String] {
    guard let ledger, let data = FileManager.default.contents(atPath: ledger), let records = try? LedgerRecord.decodeLines(data)
    else { return [] }
    return records.filter { $0.event == LedgerRecord.submitted && $0.ciJobID == String(ciJobID) }.map(\.schedulerJobID)
  }

  /// The runner's reading of a phase's exit (command.go): 0 ok; BUILD_FAILURE_EXIT_CODE with
  /// the code from the first line of BUILD_EXIT_CODE_FILE; anything else a system failure.
  func classify(_ run: PhaseRun, tmp: String) -> PhaseOutcome {
    if run.timedOut && run.status != .exited(0) { return .timedOut }
    if Task.isCancelled && run.status != .exited(0) { return .stopped }
    switch run.status {
    case .exited(0): return .ok
    case .exited(1):
      let file = "\(tmp)/build_exit_code"
      guard let data = FileManager.default.contents(atPath: file) else { return .build(1) }
      let firstLine = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
      guard let code = Int32(firstLine) else {
        return .system("unknown Custom executor executable exit code 2; the exit code file holds '\(firstLine)'")
      }
      return .build(code)
    case .exited(2): return .system("exit status 2")
    default: return .system("unknown Custom executor executable exit code: \(run.status)")
    }
  }
}

/// GitLab's variable expansion in variable values: `$NAME` and `${NAME}`, unknown names
/// become empty (as Go's os.Expand does in the runner); `$$` is a literal `$`.
public enum VariableExpansion {
  public static func expand(_ text: String, with variables: [String: String]) -> String {
    var out = ""
    var scalars = Substring(text).unicodeScalars[...]
    while let first = scalars.first {
      scalars = scalars.dropFirst()
      guard first == "$", let next = scalars.first else {
        out.unicodeScalars.append(first)
        continue
      }
      if next == "$" {
        out += "$"
        scalars = scalars.dropFirst()
      } else if next == "{", let close = scalars.firstIndex(of: "}") {
        let name = String(String.UnicodeScalarView(scalars[scalars.index(after: scalars.startIndex)..<close]))
        out += variables[name] ?? ""
        scalars = scalars[scalars.index(after: close)...]
      } else if next == "_" || ("A"..."Z").contains(next) || ("a"..."z").contains(next) {
        let name = scalars.prefix { $0 == "_" || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        out += variables[String(String.UnicodeScalarView(name))] ?? ""
        scalars = scalars.dropFirst(name.count)
      } else {
        out += "$"
      }
    }
    return out
  }
}

/// config_exec's stdout, read with the runner's rules (custom.go dynamicConfig): no output
/// means no overrides; anything else must be exactly one JSON object of the right types.
public enum ConfigJSON {
  public struct Error: Swift.Error, CustomStringConvertible, Equatable {
    public var description: String
  }

  public static func parse(_ data: Data) throws -> ConfigExecOutput {
    if data.isEmpty { return ConfigExecOutput() }
    guard let text = String(data: data, encoding: .utf8) else { throw Error(description: "not UTF-8") }
    if text.allSatisfy(\.isWhitespace) { throw Error(description: "unexpected end of JSON input") }
    do {
      return try JSONDecoder().decode(ConfigExecOutput.self, from: data)
    } catch {
      throw Error(description: "\(error)")
    }
  }
}

/// Plays GitLab's part for `id_tokens:`: a signed token per job with the claims a driver
/// reads (docs/gitlab.md shows the block users add).
public struct IDTokenIssuer: Sendable {
  public var minter: IDTokenMinter
  public var issuer: String

  public init(minter: IDTokenMinter, issuer: String) {
    self.minter = minter
    self.issuer = issuer
  }

  func token(audiences: [String], jobID: Int, pipelineID: Int, projectPath: String, userLogin: String, timeout: Int) throws -> String {
    let now = Date()
    // GitLab's tokens live as long as the job may (its timeout), plus 5 minutes.
    return try minter.mint(
      GitLabClaims(
        issuer: issuer, audience: audiences, expires: now.addingTimeInterval(TimeInterval(timeout + 300)),
        notBefore: now.addingTimeInterval(-1), issuedAt: now, jobID: String(jobID), userLogin: userLogin,
        projectPath: projectPath, pipelineID: String(pipelineID)))
  }
}

/// The job payload the runner writes to response.json: the fields a driver may read.
enum JobResponse {
  static func json(id: Int, name: String, stage: String, projectPath: String, timeout: Int,
                   variables: [(String, String)], script: [String], afterScript: [String]) -> Data {
    let payload = JobPayload(
      id: id, token: "ci-local-token",
      jobInfo: .init(name: name, stage: stage, projectID: 1, projectName: projectPath.split(separator: "/").last.map(String.init) ?? ""),
      runnerInfo: .init(timeout: timeout),
      variables: variables.map { JobPayload.Variable(key: $0.0, value: $0.1) },
      steps: [.init(name: "script", script: script, timeout: timeout, when: "on_success"),
              .init(name: "after_script", script: afterScript, timeout: 300, when: "always")])
    return (try? payload.encoded()) ?? Data("{}\n".utf8)
  }
}

public enum TemporaryDirectory {
  public static func make(prefix: String, in parent: String? = nil) throws -> String {
    let base = parent ?? (ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp")
    var template = Array("\(base)/\(prefix)XXXXXXXX".utf8CString)
    guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw Pipeline.Error(message: "cannot create a temp dir in \(base): \(String(cString: strerror(errno)))")
    }
    return String(cString: result)
  }
}
