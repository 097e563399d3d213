#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
public import Scheduling
import SbatchModel

/// One Slurm job as a JUnit report, for GitLab's test tab (`artifacts:reports:junit`): a
/// `<testsuite>` per job, a `<testcase>` per array task (one for a plain job) with its
/// time, and a `<failure>` with the exit code and the last lines of its output. GitLab
/// reads `testsuite`/`testcase` (`name`, `classname`, `time`), `failure` and `system-out`;
/// Tests/ExecutorCoreTests/Fixtures/junit-gitlab.xsd says so as a schema and a test
/// validates against it. Pure: the caller reads the tails and writes the file.
public enum JUnitReport {
  /// How much of a failed task's output the report keeps.
  public static let tailLines = 20
  public static let tailBytes = 8 << 10

  public struct Case: Equatable, Sendable {
    public var task: Int
    public var outcome: TaskOutcome
    public var seconds: Int?
    /// The end of the task's output (only failures carry it).
    public var tail: String

    public init(task: Int, outcome: TaskOutcome, seconds: Int?, tail: String) {
      self.task = task
      self.outcome = outcome
      self.seconds = seconds
      self.tail = tail
    }
  }

  public static func render(jobName: String, id: JobID, scheduler: String, isArray: Bool, cases: [Case]) -> String {
    let ordered = cases.sorted { $0.task < $1.task }
    let failures = ordered.filter { $0.outcome != .succeeded }.count
    let total = ordered.compactMap(\.seconds).reduce(0, +)
    let suite = "\(jobName) (\(scheduler) job \(id.raw))"
    var lines = [
      #"<?xml version="1.0" encoding="UTF-8"?>"#,
      "<testsuites>",
      "  <testsuite name=\"\(escaped(suite))\" tests=\"\(ordered.count)\" failures=\"\(failures)\" errors=\"0\" time=\"\(total)\">",
    ]
    for item in ordered {
      let name = isArray ? "task \(item.task)" : jobName
      let time = item.seconds.map { " time=\"\($0)\"" } ?? ""
      let open = "    <testcase name=\"\(escaped(name))\" classname=\"\(escaped(suite))\"\(time)"
      guard item.outcome != .succeeded else {
        lines.append(open + "/>")
        continue
      }
      let code = item.outcome.buildExitCode.map { "exit code \($0)" } ?? item.outcome.summary
      lines.append(open + ">")
      // GitLab shows the failure's text, not its message: the code leads the text too.
      let text = item.tail.isEmpty ? code : "\(code); the output ends:\n\(item.tail)"
      lines.append("      <failure message=\"\(escaped(code))\" type=\"\(escaped(JobSections.state(of: item.outcome)))\">\(escaped(text))</failure>")
      lines.append("    </testcase>")
    }
    lines += ["  </testsuite>", "</testsuites>"]
    return lines.joined(separator: "\n") + "\n"
  }

  /// The last `tailLines` lines of `data` (at most its last `tailBytes`), as text.
  public static func tail(of data: Data) -> String {
    let text = String(decoding: data.suffix(tailBytes), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let trimmed = lines.last == "" ? lines.dropLast() : lines[...]
    return trimmed.suffix(tailLines).joined(separator: "\n")
  }

  /// Slurm's elapsed (`[D-]HH:MM:SS`) as seconds.
  public static func seconds(elapsed: String?) -> Int? { elapsed.flatMap { try? SlurmTime.seconds(from: $0) } }

  /// XML text and attribute content: the five specials as entities, and every character
  /// XML 1.0 cannot hold (controls other than tab, newline and CR, such as a colour code's
  /// ESC) removed.
  static func escaped(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
      default:
        let value = scalar.value
        if value < 0x20 || value == 0x7f || (0xFFFE...0xFFFF).contains(value) { continue }
        out.unicodeScalars.append(scalar)
      }
    }
    return out
  }
}
