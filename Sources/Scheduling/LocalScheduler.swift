public import ChildProcesses
public import SbatchModel
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#endif

/// Runs batch jobs as child processes on this machine: the embedded default for a first
/// run where no Slurm exists. It honours `--array` (with its `%N` throttle) and `--time`,
/// sets the SLURM_* variables a job script reads, and ignores other options (it says so).
///
/// Each job is one detached session (a supervisor shell and its tasks), so that it survives
/// the `ci-run` that started it being killed, and `cancel` can end all of it.
public struct LocalScheduler: Scheduler {
  public let name = "local"

  public init() {}

  public func checkAvailable() throws {
    _ = try ChildProcess.resolve("bash", path: ProcessInfo.processInfo.environment["PATH"])
  }

  public func submit(_ job: BatchJob) throws -> JobID {
    let array = try job.request.array
    let ids = array?.taskIDs ?? [0]
    let parallel = max(1, array?.throttle ?? ProcessInfo.processInfo.activeProcessorCount)
    let limit = try job.request.timeLimitSeconds
    let q = ShellWords.quote
    var lines = [
      "#!/bin/bash",
      "# Local backend supervisor, written by ci-run: runs the tasks, at most \(parallel) at once.",
      "dir=\(q(job.directory))",
      "ids=(\(ids.map(String.init).joined(separator: " ")))",
      "for t in \"${ids[@]}\"; do",
      "  while [ \"$(jobs -rp | wc -l)\" -ge \(parallel) ]; do wait -n; done",
    ]
    let run: String
    if let limit {
      // timeout(1) sends TERM like Slurm at the limit, then KILL 5 s later (KillWait).
      run = "timeout --signal=TERM --kill-after=5 \(limit) bash \(q(job.wrapperScript))"
    } else {
      run = "bash \(q(job.wrapperScript))"
    }
    if job.isArray {
      lines.append(
        "  ( export SLURM_ARRAY_TASK_ID=$t SLURM_TASK_PID=$BASHPID; \(run); rc=$?; if [ $rc = 124 ]; then echo \(SlurmTime.format(seconds: limit ?? 0)) > \"$dir/local-end-$t\"; fi ) > \"$dir/output-$t.log\" 2>&1 &"
      )
    } else {
      lines.append(
        "  ( \(run); rc=$?; if [ $rc = 124 ]; then echo \(SlurmTime.format(seconds: limit ?? 0)) > \"$dir/local-end-$t\"; fi ) > \"$dir/output.log\" 2>&1 &"
      )
    }
    lines += ["done", "wait", ""]
    let supervisor = "\(job.directory)/local-supervisor.sh"
    try lines.joined(separator: "\n").write(toFile: supervisor, atomically: true, encoding: .utf8)
    // Readable by the job's account too (its directory is already private to it).
    chmod(supervisor, 0o755)

    var environment = job.environment
    environment["SLURM_JOB_NAME"] = job.name
    environment["SLURM_SUBMIT_DIR"] = job.workingDirectory
    environment["SLURM_CLUSTER_NAME"] = "local"
    environment["SLURM_JOB_PARTITION"] = "local"
    environment["SLURM_JOB_NODELIST"] = ProcessInfo.processInfo.hostName
    if let cpus = job.request.value(of: "cpus-per-task") { environment["SLURM_CPUS_PER_TASK"] = cpus }
    if let array {
      environment["SLURM_ARRAY_TASK_COUNT"] = String(array.taskIDs.count)
      environment["SLURM_ARRAY_TASK_MIN"] = String(array.taskIDs.first ?? 0)
      environment["SLURM_ARRAY_TASK_MAX"] = String(array.taskIDs.last ?? 0)
    }
    // The job id is the supervisor's pid, which the supervisor's environment cannot know
    // before it starts; an `exec` through env sets it.
    let child = try ChildProcess(
      arguments: ["bash", "-c", "export SLURM_JOB_ID=$$ SLURM_ARRAY_JOB_ID=$$; exec bash \(q(supervisor))"],
      environment: environment, workingDirectory: job.workingDirectory,
      stdout: .null, stderr: .file("\(job.directory)/local-supervisor.log"), newSession: true)
    return JobID("local-\(child.pid)")
  }

  static func pid(of id: JobID) throws -> Int32 {
    guard id.raw.hasPrefix("local-"), let pid = Int32(id.raw.dropFirst(6)), pid > 1 else {
      throw SchedulerError(.unexpectedOutput, "not a local job id: \(id)")
    }
    return pid
  }

  /// Always fresh: the jobs are this host's processes.
  public func snapshot(of id: JobID, fresh: Bool) throws -> JobSnapshot {
    let pid = try LocalScheduler.pid(of: id)
    if ProcessTable.isAlive(pid) { return JobSnapshot(tasks: [:], pendingRest: nil) }
    return JobSnapshot(unknown: true)
  }

  public func finalStates(of id: JobID, in directory: String) throws -> TaskEnds {
    // The supervisor notes a timeout per task; any other task that ended without a status
    // was killed from outside (cancel, or someone's kill).
    var ends: [Int: TaskEnd] = [:]
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for name in names where name.hasPrefix("local-end-") {
      if let task = Int(name.dropFirst("local-end-".count)) {
        let limit = (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8))?.split(separator: "\n").first.map(String.init)
        ends[task] = TaskEnd(kind: .timeout, timeLimit: limit)
      }
    }
    return TaskEnds(byTask: ends, otherwise: TaskEnd(kind: .cancelled(by: nil)))
  }

  public func cancel(_ id: JobID) throws {
    let pid = try LocalScheduler.pid(of: id)
    // Only our own session leader: a recycled pid that leads no session is left alone.
    guard let entry = ProcessTable.entry(pid), entry.session == pid else { return }
    ProcessTable.signalSession(pid, SIGTERM)
    for _ in 0..<50 {
      if ProcessTable.all().allSatisfy({ $0.session != pid || $0.state == "Z" }) { return }
      usleep(100_000)
    }
    ProcessTable.signalSession(pid, SIGKILL)
  }

  /// Nothing to lower: a local job starts the moment it is submitted, so the `--time` it
  /// was submitted with (already inside GitLab's clock, `StageClock.fit`) is the limit
  /// `timeout(1)` enforces.
  public func lowerTimeLimit(of id: JobID, task: Int?, toMinutes minutes: Int) throws {}

  public func cancel(named name: String) throws {
    // Local jobs are always recorded before anything can go wrong (the pid is known at
    // spawn); there is no name registry to search.
  }

  public func liveJobs(named name: String) throws -> [JobID] { [] }
}
