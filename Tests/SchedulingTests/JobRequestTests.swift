import Foundation
import Scheduling
import Testing

@Suite struct ShellWordsTests {
  @Test func quotesAndEscapes() throws {
    #expect(try ShellWords.split(#"-c 2 --comment="a b" -J 'x y' a\ b"#) == ["-c", "2", "--comment=a b", "-J", "x y", "a b"])
    #expect(try ShellWords.split(#""\$HOME" '\n'"#) == ["$HOME", "\\n"])
    #expect(try ShellWords.split("  ") == [])
    #expect(try ShellWords.split("''") == [""])
  }

  @Test func shellSyntaxIsPlainText() throws {
    #expect(try ShellWords.split("-c 1; touch /tmp/x") == ["-c", "1;", "touch", "/tmp/x"])
    #expect(try ShellWords.split("$(touch /tmp/x)") == ["$(touch", "/tmp/x)"])
    #expect(try ShellWords.split("`touch /tmp/x`") == ["`touch", "/tmp/x`"])
  }

  @Test func unterminatedQuotesAreErrors() {
    #expect(throws: ShellWords.ParseError.self) { try ShellWords.split("-J 'abc") }
    #expect(throws: ShellWords.ParseError.self) { try ShellWords.split(#"-J "abc"#) }
    #expect(throws: ShellWords.ParseError.self) { try ShellWords.split(#"abc\"#) }
  }

  @Test func quoteRoundTrips() throws {
    for word in ["plain", "two words", "it's", "$(x)", "", "a\"b"] {
      #expect(try ShellWords.split(ShellWords.quote(word)) == [word])
    }
  }
}

@Suite struct JobRequestTests {
  @Test func shortLongAndAttachedFormsBecomeCanonical() throws {
    let request = try JobRequest.parse("-c 2 --mem 2G -t 10:00 -p debug -N1 --array=0-9%4 -Q")
    #expect(request.arguments == [
      "--cpus-per-task=2", "--mem=2G", "--time=10:00", "--partition=debug", "--nodes=1", "--array=0-9%4", "--quiet",
    ])
    #expect(try request.timeLimitSeconds == 600)
    #expect(try request.array?.taskIDs == Array(0...9))
    #expect(try request.array?.throttle == 4)
  }

  @Test(arguments: [
    ("--output=/tmp/x", "--output (-o) is not allowed"),
    ("-o /tmp/x", "--output (-o) is not allowed"),
    ("-e err", "--error (-e) is not allowed"),
    ("--chdir /", "--chdir (-D) is not allowed"),
    ("--uid=0", "--uid is not allowed"),
    ("--gid 0", "--gid is not allowed"),
    ("--wrap='rm -rf /'", "--wrap is not allowed"),
    ("--export=ALL", "--export is not allowed"),
    ("-J myname", "--job-name (-J) is not allowed"),
    ("-W", "--wait (-W) is not allowed"),
    ("--requeue", "--requeue is not allowed"),
  ])
  func deniedOptionsAreNamed(line: String, expected: String) {
    #expect {
      try JobRequest.parse(line)
    } throws: { error in
      "\(error)".contains(expected) && !"\(error)".contains("\n")
    }
  }

  @Test(arguments: ["-c 1; touch /tmp/x", "$(touch /tmp/x)", "`touch /tmp/x`", "-c 1 && touch /tmp/x", "script.sh"])
  func injectionStringsAreRejectedAsWords(line: String) {
    #expect {
      try JobRequest.parse(line)
    } throws: { error in
      "\(error)".contains("only sbatch options are allowed") || "\(error)".contains("unknown sbatch option")
    }
  }

  @Test func abbreviationsAndUnknownOptionsGetASuggestion() {
    #expect {
      try JobRequest.parse("--out=/tmp/x")
    } throws: { error in "\(error)".contains("unknown sbatch option --out") }
    #expect {
      try JobRequest.parse("--partiton=debug")
    } throws: { error in "\(error)".contains("did you mean --partition?") }
  }

  @Test func missingValuesAndBadValues() {
    #expect { try JobRequest.parse("-c") } throws: { "\($0)".contains("-c needs a value") }
    #expect { try JobRequest.parse("-t 5:0:0:0") } throws: { "\($0)".contains("not a Slurm time") }
    #expect { try JobRequest.parse("--array=3-1") } throws: { "\($0)".contains("not an index or a range") }
    #expect { try JobRequest.parse("--quiet=yes") } throws: { "\($0)".contains("takes no value") }
  }
}

@Suite struct ArraySpecTests {
  @Test func forms() throws {
    #expect(try ArraySpec(parsing: "1,3,5-7").taskIDs == [1, 3, 5, 6, 7])
    #expect(try ArraySpec(parsing: "0-15:4").taskIDs == [0, 4, 8, 12])
    #expect(try ArraySpec(parsing: "7").taskIDs == [7])
    #expect(try ArraySpec(parsing: "0-3%1").throttle == 1)
  }

  @Test(arguments: ["", "%2", "a-b", "1-", "0-9%0", "0-9:0", "-1", "0-999999999"])
  func badForms(text: String) {
    #expect(throws: ArraySpec.ParseError.self) { try ArraySpec(parsing: text) }
  }
}

@Suite struct SlurmTimeTests {
  @Test func forms() throws {
    #expect(try SlurmTime.seconds(from: "10") == 600)
    #expect(try SlurmTime.seconds(from: "10:30") == 630)
    #expect(try SlurmTime.seconds(from: "1:00:00") == 3600)
    #expect(try SlurmTime.seconds(from: "2-0") == 172800)
    #expect(try SlurmTime.seconds(from: "1-2:3") == 93780)
    #expect(try SlurmTime.seconds(from: "1-0:0:5") == 86405)
    #expect(try SlurmTime.seconds(from: "UNLIMITED") == nil)
    #expect(SlurmTime.format(seconds: 600) == "00:10:00")
    #expect(SlurmTime.format(seconds: 90061) == "1-01:01:01")
  }

  @Test(arguments: ["5:0:0:0", "abc", "", "1-", "-5", "1:x"])
  func badForms(text: String) {
    #expect(throws: SlurmTime.ParseError.self) { try SlurmTime.seconds(from: text) }
  }
}

@Suite struct WrapperScriptTests {
  @Test func statusFileForms() {
    #expect(WrapperScript.parseStatus("exit 0\n") == .exited(0))
    #expect(WrapperScript.parseStatus("exit 3\n") == .exited(3))
    #expect(WrapperScript.parseStatus("terminated 143\n") == .terminated(143))
    #expect(WrapperScript.parseStatus("exit") == nil)
    #expect(WrapperScript.parseStatus("") == nil)
  }

  @Test func wrapperHoldsNoVariablesAndRecordsStatus() throws {
    let directory = try makeTemporaryDirectory()
    let stage = "\(directory)/script.sh"
    try "echo out; exit 5\n".write(toFile: stage, atomically: true, encoding: .utf8)
    let wrapper = WrapperScript.render(stageScript: stage, directory: directory)
    #expect(!wrapper.contains("export "))
    try wrapper.write(toFile: "\(directory)/wrapper.sh", atomically: true, encoding: .utf8)
    let result = try ProcessCommandRunner().run(Command(["bash", "\(directory)/wrapper.sh"], environment: ["PATH": "/usr/bin:/bin"]))
    #expect(result.status == .exited(5))
    #expect(result.stdout == "out\n")
    #expect(try String(contentsOfFile: "\(directory)/status", encoding: .utf8) == "exit 5\n")
  }
}

func makeTemporaryDirectory() throws -> String {
  let path = NSTemporaryDirectory() + "ci-slurm-test-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}
