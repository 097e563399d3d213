import ExecutorCore
import Foundation
import Scheduling
import TestSizes
import Testing
import SbatchModel

/// Random and adversarial strings, thousands of cases: never a crash, never a shell; always
/// a valid argv or one error.
@Suite(.tags(.small)) struct ParserFuzzTests {
  /// A small deterministic generator (SplitMix64), so a failure can be replayed.
  struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  static let alphabet = Array("-–—=,:;%$`'\"\\ \t\n()|&<>*?!#~{}[]aAcCtTpP0123456789é✓\u{0}")
  static let fragments = ["--array=", "-c", "--time=", "-t", "--output=", "$(rm -rf /)", "`id`", "'", "\"", "\\", "--", "-", "%", "0-9%2",
                          "--mem", "2G", "--wrap=", ";", "&&", "|", "\n", "--cpus-per-task", "-J", "x", "--export=ALL", "--partition=debug"]

  func randomLine(_ rng: inout SplitMix) -> String {
    var line = ""
    for _ in 0..<Int.random(in: 0...12, using: &rng) {
      if Bool.random(using: &rng) {
        line += Self.fragments.randomElement(using: &rng)!
      } else {
        for _ in 0..<Int.random(in: 1...6, using: &rng) { line.append(Self.alphabet.randomElement(using: &rng)!) }
      }
      if Bool.random(using: &rng) { line += " " }
    }
    return line
  }

  @Test func schedulerParametersNeverCrashAndAreArgvOrOneError() throws {
    var rng = SplitMix(state: 20261123)
    var accepted = 0
    for _ in 0..<5000 {
      let line = randomLine(&rng)
      do {
        let request = try JobRequest.parse(line)
        accepted += 1
        for word in request.arguments {
          #expect(word.hasPrefix("--"), "\(line.debugDescription) gave a non-option word \(word.debugDescription)")
          #expect(!["--output", "--error", "--chdir", "--uid", "--gid", "--wrap", "--export", "--job-name"].contains { word == $0 || word.hasPrefix($0 + "=") })
        }
      } catch let error as JobRequest.ParseError {
        #expect(error.message.hasPrefix("SCHEDULER_PARAMETERS: "), "\(line.debugDescription): \(error.message)")
      }
    }
    #expect(accepted > 50, "the generator should also produce valid lines")
  }

  /// Digit strings far past Int's range, in every numeric place of the Scheduling parsers:
  /// a value or one error each, never an overflow trap (`--array=0,0-9223372036854775807`
  /// used to end the phase with exit 132).
  @Test func longDigitStringsNeverCrashTheParsers() throws {
    var rng = SplitMix(state: 19)
    let templates = ["--array=0,0-N", "--array=N", "--array=0-N:N", "--array=0-9%N", "--array=N-N", "-t N", "-t N:N", "-t N-N:N:N",
                     "-c N", "--mem N", "--mem=NG", "--array=0-1:N", "--time=N-N"]
    for _ in 0..<2000 {
      let digits = String((0..<Int.random(in: 1...40, using: &rng)).map { _ in "0123456789".randomElement(using: &rng)! })
      let line = templates.randomElement(using: &rng)!.replacingOccurrences(of: "N", with: digits)
      do {
        let request = try JobRequest.parse(line)
        _ = try? request.array
        _ = try? request.timeLimitSeconds
      } catch let error as JobRequest.ParseError {
        #expect(error.message.hasPrefix("SCHEDULER_PARAMETERS: "), "\(line): \(error.message)")
        #expect(!error.message.contains("\n"))
      }
      _ = try? ArraySpec(parsing: digits + "-" + digits)
      _ = try? SlurmTime.seconds(from: digits + "-" + digits + ":" + digits)
    }
    #expect {
      try ArraySpec(parsing: "0,0-9223372036854775807")
    } throws: { error in
      (error as? ArraySpec.ParseError)?.message == "--array=0,0-9223372036854775807: index 9223372036854775807 is over Slurm's largest array index (4000000)"
    }
  }

  @Test func settingsNeverCrash() throws {
    var rng = SplitMix(state: 42)
    let keys = ["backend", "data_root", "poll_seconds", "[limits]", "max_time", "[run_as.accounts]", "\"a b\"", "keep_builds", "=", "#", "[", "]"]
    for _ in 0..<3000 {
      var text = ""
      for _ in 0..<Int.random(in: 1...6, using: &rng) {
        text += keys.randomElement(using: &rng)! + " = " + randomLine(&rng).replacingOccurrences(of: "\n", with: " ") + "\n"
      }
      do {
        _ = try DriverSettings.parse(text, origin: "fuzz.toml", defaultDataRoot: "/x")
      } catch let error as DriverSettings.Error {
        #expect(error.message.hasPrefix("fuzz.toml:"), "\(error.message)")
      }
    }
  }
}
