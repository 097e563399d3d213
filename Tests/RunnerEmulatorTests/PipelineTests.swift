import Foundation
import RunnerEmulator
import TestSizes
import Testing

func pipeline(_ yaml: String, files: [String: String] = [:]) throws -> Pipeline {
  let directory = NSTemporaryDirectory() + "pipeline-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  for (name, text) in files {
    try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
  }
  try yaml.write(toFile: "\(directory)/.gitlab-ci.yml", atomically: true, encoding: .utf8)
  return try Pipeline.load(file: "\(directory)/.gitlab-ci.yml", projectDirectory: directory)
}

@Suite(.tags(.medium)) struct PipelineTests {
  @Test func stagesNeedsAndDefaults() throws {
    let p = try pipeline("""
      stages: [build, test]
      variables: {A: "1"}
      default:
        before_script: ["echo before"]
      b:
        stage: build
        script: echo b
      t1:
        stage: test
        script: [echo t1]
      t2:
        stage: test
        needs: []
        variables: {B: "2"}
        script: [echo t2]
      """)
    #expect(p.stages == [".pre", "build", "test", ".post"])
    #expect(p.jobs.map(\.name) == ["b", "t1", "t2"])
    #expect(p.job(named: "b")?.beforeScript == ["echo before"])
    #expect(p.prerequisites(of: p.job(named: "t1")!).map(\.name) == ["b"])
    #expect(p.prerequisites(of: p.job(named: "t2")!).isEmpty)
    #expect(p.job(named: "t2")?.variables.map(\.name) == ["A", "B"])
  }

  @Test func matrixAndCountExpandAsGitLabNamesThem() throws {
    let p = try pipeline("""
      m:
        script: echo $X $Y
        parallel:
          matrix:
            - X: [a, b]
              Y: ["1", "2"]
            - X: c
      n:
        script: echo
        parallel: 2
      after:
        needs: [m]
        script: echo
      """)
    #expect(p.jobs.map(\.name) == ["m: [a, 1]", "m: [a, 2]", "m: [b, 1]", "m: [b, 2]", "m: [c]", "n 1/2", "n 2/2", "after"])
    #expect(p.prerequisites(of: p.job(named: "after")!).count == 5)
    let first = p.job(named: "m: [a, 2]")!
    #expect(first.variables.first { $0.name == "Y" }?.value == "2")
  }

  @Test func extendsAndLocalIncludeMergeLikeGitLab() throws {
    let p = try pipeline("""
      include:
        - local: templates.yml
      job:
        extends: .slurm
        variables: {SCHEDULER_PARAMETERS: "-c 4"}
        script: [run]
      """, files: ["templates.yml": """
      .slurm:
        variables: {SCHEDULER_PARAMETERS: "-c 1", KEEP: "yes"}
        timeout: 1h 30m
      """])
    let job = try #require(p.job(named: "job"))
    #expect(job.variables.map { "\($0.name)=\($0.value)" } == ["SCHEDULER_PARAMETERS=-c 4", "KEEP=yes"])
    #expect(job.timeoutSeconds == 5400)
    #expect(!p.jobs.contains { $0.name == ".slurm" })
  }

  @Test(arguments: [
    ("a:\n  script: x\n  needs: [nope]\n", "needs 'nope', which is not a job"),
    ("a:\n  script: x\n  needs: [b]\nb:\n  script: x\n  needs: [a]\n", "needs cycle"),
    ("a:\n  stage: deploy2\n  script: x\n", "stage 'deploy2' is not in stages"),
    ("a:\n  scrip: x\n", "unknown keyword 'scrip'"),
    ("a:\n  stage: test\n", "has no script"),
    ("a:\n  extends: .none\n  script: x\n", "extends '.none', which does not exist"),
    ("a: [1\n", "YAML error"),
    ("include: https://example.com/x.yml\n", "only local includes"),
    ("a:\n  script: x\n  timeout: soon\n", "is not a duration"),
  ])
  func badPipelinesSayWhatIsWrong(yaml: String, expected: String) {
    #expect {
      try pipeline(yaml)
    } throws: { error in
      "\(error)".contains(expected)
    }
  }

  /// The message names the jobs of the cycle, not the path that led to it.
  @Test func aNeedsCycleNamesOnlyItsJobs() {
    let yaml = "a:\n  script: x\n  needs: [b]\nb:\n  script: x\n  needs: [c]\nc:\n  script: x\n  needs: [b]\n"
    #expect { try pipeline(yaml) } throws: { "\($0)" == "needs cycle: b -> c -> b" }
  }

  @Test func aYAMLErrorIsOneLineWithThePlace() {
    // Yams's text holds the snippet and a caret on lines of their own.
    #expect {
      try pipeline("a: [1, 2\nb: c\n")
    } throws: { error in
      let text = "\(error)"
      return !text.contains("\n") && text.contains(":2:2: YAML error: while parsing a flow sequence")
    }
  }

  @Test func durations() {
    #expect(DurationText.seconds("3600") == 3600)
    #expect(DurationText.seconds("1h 30m") == 5400)
    #expect(DurationText.seconds("10 minutes") == 600)
    #expect(DurationText.seconds("2 hours, 5 min") == 7500)
    #expect(DurationText.seconds("soon") == nil)
    #expect(DurationText.seconds("5") == 5)
  }

  @Test func variableExpansionLikeTheRunner() {
    let vars = ["SCRATCH": "/scratch/u", "A": "x"]
    #expect(VariableExpansion.expand("$SCRATCH/raw", with: vars) == "/scratch/u/raw")
    #expect(VariableExpansion.expand("${A}y $$A $UNKNOWN.", with: vars) == "xy $A .")
  }
}

/// Runs a script with bash; returns its status and stdout.
func bash(_ path: String) throws -> (Int32, String) {
  let child = Process()
  child.executableURL = URL(fileURLWithPath: "/bin/bash")
  child.arguments = [path]
  let pipe = Pipe()
  child.standardOutput = pipe
  try child.run()
  let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  child.waitUntilExit()
  return (child.terminationStatus, output)
}

@Suite(.tags(.large)) struct ScriptWriterTests {
  @Test func ansiCQuotingSurvivesBash() throws {
    let tricky = "it's \"quoted\" $HOME `x` \\ \n tab\t ünï ✓"
    let directory = NSTemporaryDirectory() + "sw-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let script = ScriptWriter.userScript(variables: [("TRICKY", tricky)], projectDirectory: directory, commands: ["printf '%s' \"$TRICKY\""])
    try script.write(toFile: "\(directory)/s.sh", atomically: true, encoding: .utf8)
    let (status, output) = try bash("\(directory)/s.sh")
    #expect(output.hasSuffix(tricky))
    #expect(status == 0)
  }

  @Test func aFailingCommandStopsTheScriptWithItsStatus() throws {
    let directory = NSTemporaryDirectory() + "sw-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let script = ScriptWriter.userScript(variables: [], projectDirectory: directory, commands: ["true | true", "(exit 7)", "echo unreachable"])
    try script.write(toFile: "\(directory)/s.sh", atomically: true, encoding: .utf8)
    let (status, output) = try bash("\(directory)/s.sh")
    #expect(status == 7)
    #expect(!output.contains("unreachable\n"))
  }

  @Test func configJSONRulesMatchTheRunner() throws {
    #expect(try ConfigJSON.parse(Data()) == .init())
    #expect(throws: ConfigJSON.Error.self) { try ConfigJSON.parse(Data("\n".utf8)) }
    #expect(throws: ConfigJSON.Error.self) { try ConfigJSON.parse(Data("log line\n{}".utf8)) }
    #expect(throws: ConfigJSON.Error.self) { try ConfigJSON.parse(Data(#"{"builds_dir_is_shared": "true"}"#.utf8)) }
    #expect(try ConfigJSON.parse(Data(#"{"builds_dir": "/b", "unknown": 1}"#.utf8)).buildsDir == "/b")
  }

  @Test func everyIgnoredKeywordIsNamedOnceWithItsJobs() throws {
    let p = try pipeline("""
      workflow:
        rules: [{if: '$CI_PIPELINE_SOURCE == "web"'}]
      default:
        id_tokens: {T: {aud: x}}
        image: alpine
      a:
        retry: 2
        dependencies: []
        artifacts: {paths: [x], expire_in: 1 week}
        script: [echo a]
      b:
        retry: 1
        script: [echo b]
      """)
    #expect(p.warnings == [
      "top-level 'workflow' is ignored by ci-local (every job runs, whatever its rules)",
      "default: 'image' is ignored by ci-local",
      "'artifacts:expire_in' is ignored by ci-local (job a)",
      "'dependencies' is ignored by ci-local (job a)",
      "'retry' is ignored by ci-local (jobs a, b)",
    ])
    // default: id_tokens is honoured, not ignored.
    #expect(p.job(named: "b")?.idTokens.map(\.variable) == ["T"])
  }

  @Test func yamlErrorsAreOneLineWithAPosition() throws {
    #expect {
      try pipeline("a:\n  script: [x]\n  script: [y]\n")
    } throws: { error in
      let text = "\(error)"
      return text.hasSuffix(".gitlab-ci.yml:2:3: duplicate key 'script' in this mapping; keep one") && !text.contains("\n")
    }
    #expect {
      try pipeline("a:\n  script: [x\n")
    } throws: { "\($0)".contains(".gitlab-ci.yml:3:1: YAML error:") && !"\($0)".contains("\n") }
    #expect {
      try Pipeline.load(file: "/nonexistent/.gitlab-ci.yml", projectDirectory: "/nonexistent")
    } throws: { "\($0)" == "cannot read /nonexistent/.gitlab-ci.yml: No such file or directory" }
  }
}
