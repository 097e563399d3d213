import Foundation
import SbatchModel
import TestSizes
import Testing

@Suite(.tags(.small)) struct ShellWordsTests {
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

@Suite(.tags(.small)) struct JobRequestTests {
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

@Suite(.tags(.small)) struct ArraySpecTests {
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

@Suite(.tags(.small)) struct SlurmTimeTests {
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

  /// sacct's times, as recorded (`sacct -n -P -o ...,TotalCPU,...` on a cluster with
  /// steps, and on the local one): the same notation with fractional seconds.
  @Test func accountedTimes() {
    #expect(SlurmTime.accountedSeconds("00:08.000") == 8)
    #expect(SlurmTime.accountedSeconds("00:12.250") == 12.25)
    #expect(SlurmTime.accountedSeconds("00:00:00") == 0)
    #expect(SlurmTime.accountedSeconds("00:10:00") == 600)
    #expect(SlurmTime.accountedSeconds("1-00:00:00") == 86400)
    #expect(SlurmTime.accountedSeconds("1-02:03:04.5") == 93784.5)
    for field in ["", "UNLIMITED", "Partition_Limit", "1:x", "00:08.", "00:08.5x"] {
      #expect(SlurmTime.accountedSeconds(field) == nil, "\(field)")
    }
  }

  /// A fraction belongs to a seconds field only, and sbatch takes none.
  @Test(arguments: ["10.5", "1-02.5", "1-02:03.5"])
  func fractionsOnlyOnSeconds(text: String) {
    #expect(SlurmTime.accountedSeconds(text) == nil)
  }

  @Test func sbatchTakesWholeSeconds() {
    #expect(throws: SlurmTime.ParseError.self) { try SlurmTime.seconds(from: "10:30.5") }
  }
}

@Suite(.tags(.small)) struct SlurmMemoryTests {
  @Test func sbatchSizesInMegabytes() {
    #expect(SlurmMemory.megabytes("512") == 512)
    #expect(SlurmMemory.megabytes("512M") == 512)
    #expect(SlurmMemory.megabytes("2G") == 2048)
    #expect(SlurmMemory.megabytes("2g") == 2048)
    #expect(SlurmMemory.megabytes("1T") == 1024 * 1024)
    #expect(SlurmMemory.megabytes("100K") == 1)
    #expect(SlurmMemory.megabytes("0") == 0)
    for text in ["", "G", "1GB", " 1G", "1.5G", "-1G", "2X", "1234567890123"] {
      #expect(SlurmMemory.megabytes(text) == nil, "\(text)")
    }
  }

  /// The driver's output_limit: the same notation, in bytes.
  @Test func sbatchSizesInBytes() {
    #expect(SlurmMemory.bytes("4M") == 4 << 20)
    #expect(SlurmMemory.bytes("4") == 4 << 20)
    #expect(SlurmMemory.bytes("512K") == 512 << 10)
    #expect(SlurmMemory.bytes("1G") == 1 << 30)
    #expect(SlurmMemory.bytes("1024T") == 1 << 50)
    for text in ["", "4MB", "4 M", "-1K", "1.5M", "1048577T"] {
      #expect(SlurmMemory.bytes(text) == nil, "\(text)")
    }
  }

  /// ReqMem and MaxRSS as recorded: steps' MaxRSS in K, the allocation's ReqMem, an older
  /// Slurm's per-CPU `c` and per-node `n`, an empty step's field.
  @Test func accountedSizesInBytes() {
    #expect(SlurmMemory.accountedBytes("104857K", cpus: nil) == Double(104857 * 1024))
    #expect(SlurmMemory.accountedBytes("2G", cpus: 1) == Double(2 << 30))
    #expect(SlurmMemory.accountedBytes("512M", cpus: 4) == Double(512 << 20))
    #expect(SlurmMemory.accountedBytes("1000Mc", cpus: 2) == Double(2000 << 20))
    #expect(SlurmMemory.accountedBytes("1000Mn", cpus: 2) == Double(1000 << 20))
    #expect(SlurmMemory.accountedBytes("0", cpus: nil) == 0)
    #expect(SlurmMemory.accountedBytes("", cpus: nil) == nil)
    #expect(SlurmMemory.accountedBytes("16?", cpus: nil) == nil)
  }
}

@Suite(.tags(.small)) struct TimeLimitTests {
  /// The one minutes rule the driver and `ci-gen explain` share: never less than the CI
  /// job's timeout, in Slurm's whole minutes.
  @Test func minutesCoverTheTimeout() {
    #expect(SlurmTime.minutes(covering: 60) == 1)
    #expect(SlurmTime.minutes(covering: 61) == 2)
    #expect(SlurmTime.minutes(covering: 3600) == 60)
  }

  @Test func policyWithoutCapsAddsTheCoveringMinutes() throws {
    let request = try OptionPolicy().request(defaults: JobRequest(), user: JobRequest.parse("-c 2"), timeoutSeconds: 3601)
    #expect(request.value(of: "time") == "61")
  }
}

@Suite(.tags(.small)) struct JobLayoutTests {
  @Test func pathsUnderTheRoot() {
    let layout = JobLayout(root: "/data", jobID: "42")
    #expect(layout.jobDirectory == "/data/jobs/42")
    #expect(layout.buildsDirectory == "/data/builds/42")
    #expect(layout.stateFile == "/data/jobs/42/state.json")
    #expect(layout.stageDirectory("build_script", attempt: 2) == "/data/jobs/42/build_script-2")
    #expect(JobFiles.wrapper(in: "/d") == "/d/wrapper.sh")
    #expect(JobLayout.schedulerJobName(projectSlug: "group-app", jobID: "42") == "ci-group-app-42")
  }

  @Test func sbatchLineNamesArrayOutputsPerTask() throws {
    let words = SbatchCommand.arguments(
      jobName: "ci-p-1", script: "/d/wrapper.sh", directory: "/d", workingDirectory: "/b",
      request: try JobRequest.parse("--array=0-3 -c 2"))
    #expect(words == [
      "sbatch", "--parsable", "--job-name=ci-p-1", "--output=/d/output-%a.log", "--chdir=/b", "--export=ALL",
      "--no-requeue", "--array=0-3", "--cpus-per-task=2", "/d/wrapper.sh",
    ])
  }
}

@Suite(.tags(.small)) struct SacctRowTests {
  @Test func fieldsPaddedStepsMarkedBlankLinesDropped() {
    let rows = SacctRow.parseAll("62_3|vm1|COMPLETED\n\n62_3.batch|vm1|COMPLETED|x\n|no|id\nshort|line\n", fieldCount: 4, minimum: 3)
    #expect(rows.map(\.fields) == [["62_3", "vm1", "COMPLETED", ""], ["62_3.batch", "vm1", "COMPLETED", "x"]])
    #expect(rows.map(\.isStep) == [false, true])
  }
}
