public import CustomExecutorAPI
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import SbatchModel

/// GitLab's clock around one stage, and the Slurm job fitted inside it. GitLab stops a CI
/// job at its timeout whatever the queue did; a Slurm job still running then dies with the
/// driver, its output cut. So the driver submits with `--time` inside what is left, lowers
/// the limit when the job starts (the queue took its share), and keeps `drain` seconds at
/// the end: the job ends by Slurm's hand first, as TIMEOUT, its log complete.
///
/// The variables the clock is read from are the user's to set: they can only shorten it,
/// bad text is one line and is ignored, and the admin's caps stay on top (`OptionPolicy`).
public struct StageClock: Equatable, Sendable {
  /// When the runner stops this stage.
  public var end: Date
  /// What sets `end`, for the log: "the CI job's timeout of 3600 s", "RUNNER_SCRIPT_TIMEOUT=10m".
  public var source: String
  /// Kept free at the end for the output to drain and the driver to report.
  public var drainSeconds: TimeInterval

  public init(end: Date, source: String, drainSeconds: TimeInterval) {
    self.end = end
    self.source = source
    self.drainSeconds = drainSeconds
  }

  /// When the Slurm job must be over.
  public var jobEnd: Date { end.addingTimeInterval(-drainSeconds) }

  /// The whole minutes a job starting at `now` may be given: Slurm counts minutes, and
  /// rounding down keeps the job inside. Zero or less when not even a minute is left.
  public func limitMinutes(at now: Date) -> Int { Int((jobEnd.timeIntervalSince(now) / 60).rounded(.down)) }

  /// The clock of `stage`, or nil when GitLab gave no timeout. `jobStartedAt`: the
  /// earliest the driver knows of the CI job (the payload's writing, prepare's start);
  /// `scriptStartedAt`: the start of the first user-script stage, where the runner starts
  /// RUNNER_SCRIPT_TIMEOUT's clock. `notes` are one line per variable ignored.
  public static func resolve(
    stage: RunStage, environment: RunnerEnvironment, timeoutSeconds: Int?, jobStartedAt: Date, scriptStartedAt: Date,
    now: Date, drainSeconds: TimeInterval
  ) -> (clock: StageClock?, notes: [String]) {
    var notes: [String] = []
    var timeout = timeoutSeconds.flatMap { $0 > 0 ? $0 : nil }
    var source = timeout.map { "the CI job's timeout of \($0) s" }
    if let text = environment.job(StageTimeouts.job) {
      if text.count <= 12, text.allSatisfy({ $0.isASCII && $0.isNumber }), let seconds = Int(text), seconds > 0 {
        if seconds < timeout ?? .max {
          timeout = seconds
          source = "\(StageTimeouts.job)=\(seconds)"
        }
      } else {
        notes.append("\(StageTimeouts.job) is '\(shown(text))', not a number of seconds; the driver ignores it")
      }
    }
    var best = timeout.map { (end: jobStartedAt.addingTimeInterval(TimeInterval($0)), source: source!) }

    let name: String
    let stageStart: Date
    var stageDefault: TimeInterval?
    if stage.isUserScript {
      (name, stageStart) = (StageTimeouts.script, scriptStartedAt)
    } else if stage == .afterScript {
      (name, stageStart, stageDefault) = (StageTimeouts.afterScript, now, StageTimeouts.defaultAfterScriptSeconds)
    } else {
      return (best.map { StageClock(end: $0.end, source: $0.source, drainSeconds: drainSeconds) }, notes)
    }
    let text = environment.job(name)
    var stageSeconds = stageDefault
    var stageSource = "the runner's \(Int(stageDefault ?? 0)) s for \(stage)"
    switch StageTimeouts.read(text, jobLeft: best.map { $0.end.timeIntervalSince(stageStart) }) {
    case .seconds(let seconds): (stageSeconds, stageSource) = (seconds, "\(name)=\(shown(text ?? ""))")
    case .malformed:
      notes.append("\(name) is '\(shown(text ?? ""))', not a duration (write e.g. 30m or 1h30m); the driver ignores it, as gitlab-runner does")
    case .negative: notes.append("\(name) is '\(shown(text ?? ""))', a negative duration; the driver ignores it, as gitlab-runner does")
    case .unset, .longerThanJob: break
    }
    if let stageSeconds {
      let stageEnd = stageStart.addingTimeInterval(stageSeconds)
      if stageEnd < best?.end ?? .distantFuture { best = (stageEnd, stageSource) }
    }
    return (best.map { StageClock(end: $0.end, source: $0.source, drainSeconds: drainSeconds) }, notes)
  }

  /// A variable's text as a log line may show it: printable ASCII, at most 40 characters.
  static func shown(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.prefix(40).map { (0x20..<0x7f).contains($0.value) ? $0 : "?" }))
  }

  /// What the watch needs to keep a job inside the clock.
  public struct Budget: Equatable, Sendable {
    /// When the Slurm job must be over (`StageClock.jobEnd`).
    public var jobEnd: Date
    /// What the job must get to be worth starting: a job still pending when less is left
    /// is cancelled.
    public var neededSeconds: Int
    /// The `--time` submitted, in minutes: the limit is only ever lowered from there.
    public var submittedMinutes: Int
    public var source: String

    public init(jobEnd: Date, neededSeconds: Int, submittedMinutes: Int, source: String) {
      self.jobEnd = jobEnd
      self.neededSeconds = neededSeconds
      self.submittedMinutes = submittedMinutes
      self.source = source
    }

    /// The limit to give a task seen started at `now`, or nil when the submitted one is
    /// already no longer (it counts from the task's real start, which was no later).
    public func lowered(at now: Date) -> Int? {
      let minutes = max(1, Int((jobEnd.timeIntervalSince(now) / 60).rounded(.down)))
      return minutes < submittedMinutes ? minutes : nil
    }

    public func cannotFit(at now: Date) -> Bool { jobEnd.timeIntervalSince(now) < Double(neededSeconds) }
  }

  /// A request fitted inside the clock.
  public struct Fitted: Equatable, Sendable {
    public var request: JobRequest
    public var budget: Budget
    /// One line when the user's (or the admin's default) --time was lowered.
    public var note: String?
  }

  /// Slurm drops a pending job this long after the driver would have cancelled it, so
  /// that the driver's own line comes first while it lives.
  static let deadlineSlackSeconds = 30

  /// `request` with `--time` no longer than what is left (whole minutes; a longer one
  /// asked by the user, or by the admin's defaults, `asked`, is lowered with a line) and a
  /// `--deadline` that makes Slurm drop the job if it is still pending once it cannot fit,
  /// should the driver be gone by then. Throws the CI job's timeout when not even a minute
  /// is left.
  public func fit(_ request: JobRequest, asked: JobRequest, at now: Date) throws -> Fitted {
    let minutes = limitMinutes(at: now)
    let left = Int(jobEnd.timeIntervalSince(now).rounded(.down))
    guard minutes >= 1 else {
      throw DriverFailure.build(
        exitCode: 124,
        message:
          "Not submitted: \(max(0, Int(end.timeIntervalSince(now)))) s are left of this CI job (\(source)), less than Slurm's one-minute limit plus the \(Int(drainSeconds)) s kept for the end (drain_margin_seconds)")
    }
    var fitted = request
    var note: String?
    let current = (try? request.timeLimitSeconds) ?? nil
    var keptAsked = asked.has("time")
    if current.map({ $0 > minutes * 60 }) ?? true {
      fitted.options.removeAll { $0.name == "time" }
      fitted.options.append(.init("time", String(minutes)))
      if let text = asked.value(of: "time") {
        keptAsked = false
        note = "--time=\(text) is longer than this CI job has left (\(JobWatch.duration(Double(left))) before GitLab stops it, \(source)); lowered to --time=\(minutes)"
      }
    }
    let limit = ((try? fitted.timeLimitSeconds) ?? nil) ?? minutes * 60
    var least = keptAsked ? limit : 60
    var floor: Int?
    if let text = fitted.value(of: "time-min"), let asked = (try? SlurmTime.seconds(from: text)) ?? nil {
      floor = min(asked, limit)
      if asked > limit {
        fitted.options.removeAll { $0.name == "time-min" }
        fitted.options.append(.init("time-min", String(limit / 60)))
      }
      least = floor!
    }
    if !fitted.has("deadline") {
      // Slurm drops a pending job once now + (time-min, else time) passes the deadline.
      let dropAt = left - least + StageClock.deadlineSlackSeconds
      fitted.options.append(.init("deadline", "now+\(max(1, dropAt + (floor ?? limit)))"))
    }
    return Fitted(
      request: fitted, budget: Budget(jobEnd: jobEnd, neededSeconds: least, submittedMinutes: limit / 60, source: source),
      note: note)
  }
}
