import ChildProcesses
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif


@Suite(.tags(.large)) struct AdminPolicyTests {
  @Test(arguments: [
    ("-t 48:00:00", "--time=48:00:00 is over this cluster's cap of 1-00:00:00 per CI job"),
    ("-c 16", "--cpus-per-task=16 is 16 CPUs, over this cluster's cap of 8 per CI job"),
    ("--mem 64G", "--mem=64G is 65536M, over this cluster's cap of 32768M per CI job"),
    ("--array=0-2000", "--array=0-2000 has 2001 tasks, over this cluster's cap of 1000"),
    ("--reservation=big", "--reservation is not allowed on this cluster (the admin's settings deny it)"),
  ])
  func capsAndDeniedOptionsAreOneLine(parameters: String, message: String) throws {
    let job = try DriverJob(.local, parameters: parameters)
    try job.settings("""
      [limits]
      max_time = "24:00:00"
      max_cpus = 8
      max_memory = "32G"
      max_array_tasks = 1000
      [options]
      denied = ["reservation", "--nodelist"]
      """)
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(1))
    #expect(prepare.stderr == "SCHEDULER_PARAMETERS: \(message)\n")
  }

  @Test func anAllowListNamesWhatIsAllowed() throws {
    let job = try DriverJob(.local, parameters: "-c 2 --qos=high")
    try job.settings("[options]\nallowed = [\"cpus-per-task\", \"mem\", \"time\"]\n")
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.stderr == "SCHEDULER_PARAMETERS: --qos is not allowed on this cluster; allowed: --cpus-per-task --mem --time\n")
  }

  @Test func theCITimeoutIsClampedToTheCap() throws {
    let job = try DriverJob(.local)
    job.payloadTimeout = 86400
    try job.settings("default_parameters = \"-c 1\"\n[limits]\nmax_time = \"2:00:00\"\n")
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(0))
    #expect(prepare.stderr.contains("job options: --cpus-per-task=1 --time=120"))
  }

  @Test(arguments: Backend.slurmOnly)
  func slurmRefusingAJobOverAPartitionLimitIsOneLine(backend: Backend) throws {
    // The user asked for more than the partition allows: the user's build failure.
    let job = try DriverJob(backend, parameters: "-p short -t 10")
    let run = try job.phase("ci-run", [try job.script("echo never"), "build_script"])
    #expect(run.status == .exited(1))
    #expect(run.stderr.hasSuffix("Slurm refused the job: Requested time limit is invalid (missing or exceeds some limit)\n"), "\(run.stderr)")
    #expect(try job.liveSlurmJobs().isEmpty)
  }

  @Test(arguments: Backend.slurmOnly)
  func anUnknownQOSIsRefusedByAccountingInOneLine(backend: Backend) throws {
    let job = try DriverJob(backend, parameters: "--qos=nosuch")
    let run = try job.phase("ci-run", [try job.script("echo never"), "build_script"])
    #expect(run.status == .exited(1))
    #expect(run.stderr.hasSuffix("Slurm refused the job: Invalid qos specification\n"), "\(run.stderr)")
  }

  @Test(arguments: Backend.slurmOnly)
  func anUnknownPartitionOnTheRealClusterIsOneLine(backend: Backend) throws {
    let job = try DriverJob(backend, parameters: "-p nosuch")
    let run = try job.phase("ci-run", [try job.script("echo never"), "build_script"])
    #expect(run.status == .exited(1))
    #expect(run.stderr.contains("Slurm refused the job: Invalid partition name specified"))
  }

  @Test(arguments: Backend.slurmOnly.flatMap { backend in
    [("-c 64", "More processors requested than permitted"), ("-c abc", "Invalid numeric value \"abc\" for --cpus-per-task."),
     ("-A nosuch", "Invalid account or account/partition combination specified"), ("--array=0-5000", "Invalid job array specification")]
      .map { (backend, $0.0, $0.1) }
  })
  func theUsersImpossibleRequestsAreBuildFailuresInOneLine(backend: Backend, parameters: String, reason: String) throws {
    // Passed prepare (the driver cannot know the cluster's size), refused by Slurm: it was
    // a runner system failure, which GitLab retries although it can never run.
    let job = try DriverJob(backend, parameters: parameters)
    let run = try job.phase("ci-run", [try job.script("echo never"), "build_script"])
    #expect(run.status == .exited(1), "\(run.stderr)")
    #expect(job.exitCodeFile == "1\n")
    #expect(run.stderr.hasSuffix("Slurm refused the job: \(reason)\n") || run.stderr.hasPrefix("SCHEDULER_PARAMETERS: "), "\(run.stderr)")
    #expect(try job.liveSlurmJobs().isEmpty)
  }

  @Test func logsAreKeptWhenAskedAndSweptLater() throws {
    let job = try DriverJob(.local)
    try job.settings("keep_logs_days = 1\n")
    #expect(try job.runScript("echo keep me").status == .exited(0))
    try job.cleanup()
    let kept = "\(job.tmp)/data/logs/\(job.jobID)/build_script-1-output.log"
    #expect(try String(contentsOfFile: kept, encoding: .utf8) == "keep me\n")
    #expect(!FileManager.default.fileExists(atPath: "\(job.tmp)/data/jobs/\(job.jobID)"))
    // A later job's prepare removes logs older than the setting.
    try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3 * 86400)], ofItemAtPath: "\(job.tmp)/data/logs/\(job.jobID)")
    let next = try DriverJob(.local)
    next.env["CI_SLURM_DATA_ROOT"] = "\(job.tmp)/data"
    next.env["CI_SLURM_SETTINGS"] = job.env["CI_SLURM_SETTINGS"]
    #expect(try next.phase("ci-prepare").status == .exited(0))
    #expect(!FileManager.default.fileExists(atPath: "\(job.tmp)/data/logs/\(job.jobID)"))
  }
}

@Suite(.tags(.large)) struct SecretsTests {
  @Test(arguments: Backend.slurmOnly)
  func aMaskedVariableReachesNeitherArgvNorSlurmsCopies(backend: Backend) throws {
    let job = try DriverJob(backend)
    let secret = "MASKED-\(UUID().uuidString)"
    job.env["CUSTOM_ENV_MY_TOKEN"] = secret
    // Record sbatch's argv and environment on the way through.
    let shim = "\(job.tmp)/shim"
    try FileManager.default.createDirectory(atPath: shim, withIntermediateDirectories: true)
    let real = try ChildProcess.resolve("sbatch", path: job.env["PATH"])
    try "#!/bin/sh\nprintf '%s\\n' \"$@\" >> \(job.tmp)/sbatch-argv\nenv >> \(job.tmp)/sbatch-env\nexec \(real) \"$@\"\n"
      .write(toFile: "\(shim)/sbatch", atomically: true, encoding: .utf8)
    chmod("\(shim)/sbatch", 0o755)
    job.env["PATH"] = "\(shim):\(job.env["PATH"]!)"
    // The stage script exports it, as the runner's script does: the job itself may use it.
    let result = try job.runScript("export MY_TOKEN='\(secret)'\ntest -n \"$MY_TOKEN\" && echo has-token\nscontrol write batch_script \"$SLURM_JOB_ID\" - | grep -c MASKED || true")
    #expect(result.status == .exited(0), "\(result.stderr)")
    #expect(result.stdout == "has-token\n0\n")  // Slurm's stored batch script: no secret
    let argv = try String(contentsOfFile: "\(job.tmp)/sbatch-argv", encoding: .utf8)
    let env = try String(contentsOfFile: "\(job.tmp)/sbatch-env", encoding: .utf8)
    #expect(!argv.contains(secret) && !env.contains(secret) && !env.contains("CUSTOM_ENV_"))
    #expect(!result.stderr.contains(secret))  // the driver's own lines
    // Slurm's saved job environment (StateSaveLocation) has no CI variable either.
    let id = try job.submittedJobID()
    let saved = (try? FileManager.default.subpathsOfDirectory(atPath: "/var/spool/slurmctld"))?.filter { $0.hasSuffix("job.\(id)/environment") } ?? []
    for path in saved {
      let data = FileManager.default.contents(atPath: "/var/spool/slurmctld/\(path)") ?? Data()
      #expect(!String(decoding: data, as: UTF8.self).contains(secret))
    }
    // Staged copies are private and go with cleanup.
    let jobDirectory = "\(job.tmp)/data/jobs/\(job.jobID)"
    let staged = "\(jobDirectory)/build_script-1/script.sh"
    #expect((try FileManager.default.attributesOfItem(atPath: staged)[.posixPermissions] as? Int) == 0o700)
    try job.cleanup()
    #expect(!FileManager.default.fileExists(atPath: staged))
    #expect(!FileManager.default.fileExists(atPath: jobDirectory))
  }
}

@Suite(.tags(.large)) struct ConcurrencyTests {
  @Test(arguments: Backend.slurmOnly)
  func fiftyJobsFromDifferentProjectsAtOnce(backend: Backend) async throws {
    let count = 50
    let results = try await withThrowingTaskGroup(of: (Int, Run, String, String).self) { group in
      for index in 0..<count {
        group.addTask {
          let job = try DriverJob(backend)
          job.env["CUSTOM_ENV_CI_PROJECT_PATH_SLUG"] = "project-\(index)"
          let body = "for i in $(seq 1 300); do echo \"project \(index) line $i\"; done"
          let run = try job.runScript(body)
          let name = "ci-project-\(index)-\(job.jobID)"
          try job.cleanup()
          let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "\(job.tmp)/data/jobs")) ?? ["no jobs dir"]
          return (index, run, name, leftovers.joined(separator: ","))
        }
      }
      var collected: [(Int, Run, String, String)] = []
      for try await result in group { collected.append(result) }
      return collected
    }
    #expect(results.count == count)
    for (index, run, _, leftovers) in results {
      #expect(run.status == .exited(0))
      let expected = (1...300).map { "project \(index) line \($0)\n" }.joined()
      #expect(run.stdout == expected, "project \(index)'s log is incomplete, out of order, or mixed")
      #expect(leftovers.isEmpty, "cleanup left \(leftovers) for project \(index)")
    }
    let names = Set(results.map(\.2))
    let queue = try run(["squeue", "-h", "-o", "%j"], env: ProcessInfo.processInfo.environment, timeout: 30)
    #expect(queue.stdout.split(separator: "\n").filter { names.contains(String($0)) }.isEmpty)
  }
}

