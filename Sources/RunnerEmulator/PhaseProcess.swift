public import ChildProcesses
public import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// How one phase executable ended.
struct PhaseRun {
  var status: TerminationStatus
  var stdout: Data
  var timedOut: Bool
}

/// Runs a phase executable as the runner does: own process group, cwd the temp dir, stdin
/// /dev/null, stdout and stderr one pipe (two for ci-config) read to EOF; SIGTERM to the group at the deadline or when the
/// job's task is cancelled (Ctrl-C), SIGKILL after the grace period.
enum PhaseProcess {
  static func run(
    _ arguments: [String], env: [String: String], cwd: String, deadline: ContinuousClock.Instant, gracePeriod: Duration,
    capture: Bool, stoppable: Bool, log: JobLog
  ) async -> PhaseRun {
    let child: ChildProcess
    do {
      // As gitlab-runner: stdout and stderr are one pipe (its trace is both), so the driver's
      // lines and the job's output arrive in the order written. ci-config's JSON stdout is
      // read on its own.
      child = try ChildProcess(
        arguments: arguments, environment: env, workingDirectory: cwd, stderr: capture ? .pipe : .sameAsStdout,
        newProcessGroup: true)
    } catch {
      log.line("ERROR: \(error)")
      return PhaseRun(status: .exited(127), stdout: Data(), timedOut: false)
    }
    let (stopRequests, stopRequest) = AsyncStream.makeStream(of: Void.self)
    // Unstructured on purpose: a cancel of the job's task is what starts the grace period,
    // so the escalation must not be cancelled with it; it is cancelled when the phase ends.
    let terminator = Task {
      await withTaskGroup(of: Void.self) { race in
        race.addTask { try? await Task.sleep(until: deadline) }
        race.addTask { for await _ in stopRequests { return } }
        await race.next()
        race.cancelAll()
      }
      guard !Task.isCancelled else { return }
      child.signal(SIGTERM, group: true)
      try? await Task.sleep(for: gracePeriod)
      guard !Task.isCancelled else { return }
      child.signal(SIGKILL, group: true)
    }
    let (status, stdout) = await withTaskCancellationHandler {
      await waitForExit(of: child, capture: capture, log: log)
    } onCancel: {
      if stoppable { stopRequest.yield() }
    }
    terminator.cancel()
    stopRequest.finish()
    return PhaseRun(status: status, stdout: stdout, timedOut: ContinuousClock.now >= deadline)
  }

  /// The one bridge from the blocking world: a thread reads both pipes to EOF and reaps the
  /// child, then resumes the caller once with its status (and stdout when captured).
  static func waitForExit(of child: ChildProcess, capture: Bool, log: JobLog) async -> (TerminationStatus, Data) {
    await withCheckedContinuation { continuation in
      let reader = Thread {
        var captured = Data()
        PipeDrain.drain(child) { stream, data in
          if capture && stream == .stdout { captured.append(data) } else { log.write(data) }
        }
        continuation.resume(returning: (child.wait(), captured))
      }
      reader.start()
    }
  }
}
