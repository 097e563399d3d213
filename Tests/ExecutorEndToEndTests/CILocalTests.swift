import Foundation
import JobIdentity
import Testing

/// ci-local runs whole pipelines through the four executables.
@Suite struct CILocalTests {
  func project(_ yaml: String) throws -> String {
    let directory = NSTemporaryDirectory() + "cilocal-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try yaml.write(toFile: "\(directory)/.gitlab-ci.yml", atomically: true, encoding: .utf8)
    try "input data\n".write(toFile: "\(directory)/input.txt", atomically: true, encoding: .utf8)
    return directory
  }

  func ciLocal(_ directory: String, backend: Backend, _ extra: [String] = []) throws -> Run {
    var env = ProcessInfo.processInfo.environment
    env["CI_SLURM_BACKEND"] = backend.rawValue
    env["CI_SLURM_DATA_ROOT"] = "\(directory)/.data"
    env["CI_SLURM_SETTINGS"] = Package.rootSettings
    return try run(["\(Package.bin)/ci-local", "\(directory)/.gitlab-ci.yml"] + extra, env: env, cwd: directory)
  }

  @Test(arguments: Backend.available)
  func aPipelineWithStagesNeedsMatrixAndArtifacts(backend: Backend) throws {
    let directory = try project("""
      stages: [build, analyze, report]
      variables:
        SCRATCH: /tmp
        OUT: "$SCRATCH/never-used"
      build:
        stage: build
        script:
          - cat input.txt > built.txt
          - echo "built on $SLURM_JOB_NAME"
        artifacts:
          paths: [built.txt]
      analyze:
        stage: analyze
        variables:
          SCHEDULER_PARAMETERS: "--array=0-2"
        parallel:
          matrix:
            - ITEM: [alpha, beta]
        script:
          - test -f built.txt
          - echo "$ITEM shard $SLURM_ARRAY_TASK_ID"
      report:
        stage: report
        needs: [analyze]
        script:
          - echo "report after all analyze jobs; OUT=$OUT"
        after_script:
          - echo "after_script sees $CI_JOB_STATUS"
      """)
    let result = try ciLocal(directory, backend: backend)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    #expect(result.stdout.contains("[task 2] alpha shard 2"))
    #expect(result.stdout.contains("[task 0] beta shard 0"))
    #expect(result.stdout.contains("report after all analyze jobs; OUT=/tmp/never-used"))
    #expect(result.stdout.contains("after_script sees success"))
    #expect(result.stdout.contains("Pipeline ") && result.stdout.contains("passed, 4 of 4 jobs succeeded"))
    // Every job's Slurm job is gone, and the driver left no job directories behind.
    let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/.data/jobs")) ?? []
    #expect(leftovers.isEmpty)
  }

  @Test(arguments: Backend.available)
  func aFailingJobFailsThePipelineAndSkipsWhatDependsOnIt(backend: Backend) throws {
    let directory = try project("""
      first:
        stage: build
        script: [echo one, exit 4]
      tolerated:
        stage: build
        allow_failure: {exit_codes: [9]}
        script: [exit 9]
      second:
        stage: test
        script: [echo never]
      """)
    let result = try ciLocal(directory, backend: backend)
    #expect(result.status == .exited(1))
    #expect(result.stdout.contains("ERROR: Job failed: exit code 4"))
    #expect(result.stdout.contains("failed (allowed)"))
    #expect(result.stdout.contains("second") && result.stdout.contains("skipped"))
    #expect(!result.stdout.contains("\nnever"))
  }

  @Test(arguments: Backend.available)
  func aJobOverItsTimeoutIsStoppedAndItsSchedulerJobCancelled(backend: Backend) throws {
    let directory = try project("""
      slow:
        timeout: 5 seconds
        script: [echo started, sleep 120]
      """)
    let started = Date()
    let result = try ciLocal(directory, backend: backend, ["--graceful-kill-timeout", "20"])
    #expect(result.status == .exited(1))
    #expect(result.stdout.contains("execution took longer than 5 seconds"), "\(result.stdout)")
    #expect(result.stdout.contains("Cancelling"))
    #expect(Date().timeIntervalSince(started) < 60)
  }

  @Test func badPipelinesAreOneLineErrors() throws {
    let directory = try project("a:\n  script: x\n  needs: [ghost]\n")
    let result = try ciLocal(directory, backend: .local)
    #expect(result.status != .exited(0))
    #expect(result.stderr.contains("job 'a' needs 'ghost', which is not a job of this pipeline"))
  }
}

/// ci-local plays GitLab's part for run_as: it signs each job's `id_tokens:` with a key of
/// the user's, and the driver (as root) runs the job as the account the token names.
@Suite struct CILocalRunAsTests {
  @Test(arguments: Accounts.slurm)
  func aPipelineRunsAsTheSignedUsersAccount(backend: Backend) throws {
    let directory = NSTemporaryDirectory() + "cilocal-runas-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try """
      default:
        id_tokens:
          CI_SLURM_ID_TOKEN:
            aud: ci-local-e2e
      whoami:
        script: [id -un]
      """.write(toFile: "\(directory)/.gitlab-ci.yml", atomically: true, encoding: .utf8)
    try IDTokenMinter.generatePrivateKeyPEM().write(toFile: "\(directory)/key.pem", atomically: true, encoding: .utf8)
    try """
      [run_as]
      mode = "user"
      jwks_file = "\(directory)/jwks.json"
      issuer = "https://gitlab.ci-local"
      audience = "ci-local-e2e"
      [run_as.accounts]
      bob = "ci-bob"
      """.write(toFile: "\(directory)/settings.toml", atomically: true, encoding: .utf8)
    var env = ProcessInfo.processInfo.environment
    env["CI_SLURM_BACKEND"] = backend.rawValue
    env["CI_SLURM_DATA_ROOT"] = "\(directory)/data"
    env["CI_SLURM_SETTINGS"] = "\(directory)/settings.toml"
    let result = try run(
      ["\(Package.bin)/ci-local", "--id-token-key", "\(directory)/key.pem", "--jwks-out", "\(directory)/jwks.json", "--user", "bob",
       "--jobs", "1", "\(directory)/.gitlab-ci.yml"], env: env, cwd: directory)
    #expect(result.status == .exited(0), "\(result.stdout)\n\(result.stderr)")
    #expect(result.stdout.contains("\nci-bob\n"), "\(result.stdout)")
  }
}
