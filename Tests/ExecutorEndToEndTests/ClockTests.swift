import Foundation
import Testing

/// Slurm's clock inside GitLab's, through ci-local on the real cluster: the job ends by
/// Slurm's hand (TIMEOUT) before ci-local's own kill at the CI job's timeout.
extension CILocalTests {
  @Test(arguments: Backend.available)
  func aScriptOverRunnerScriptTimeoutEndsAsATimeLimitWithItsLogComplete(backend: Backend) throws {
    let directory = try project("""
      slow:
        variables:
          RUNNER_SCRIPT_TIMEOUT: 150s
          CI_JOB_TIMEOUT: "forever"
        script:
          - echo "started"
          - sleep 300
          - echo "never"
        after_script:
          - echo "after_script sees $CI_JOB_STATUS"
      """)
    let started = Date()
    let result = try ciLocal(directory, backend: backend)
    #expect(result.status == .exited(1))
    // 150 s less the drain margin is one whole minute: Slurm's limit, not ci-local's kill.
    #expect(result.stdout.contains("hit its time limit of 00:01:00"), "\(result.stdout)")
    #expect(result.stdout.contains("ERROR: Job failed: exit code 124"))
    #expect(!result.stdout.contains("execution took longer"))
    #expect(result.stdout.contains("] started\n") && !result.stdout.contains("] never"))
    #expect(result.stdout.contains("CI_JOB_TIMEOUT is 'forever', not a number of seconds; the driver ignores it"))
    #expect(result.stdout.contains("after_script sees failed"))
    #expect(Date().timeIntervalSince(started) < 150)
  }

  @Test(arguments: Backend.slurmOnly)
  func aJobThatQueuedHasItsLimitLoweredWhenItStarts(backend: Backend) throws {
    // Five minutes, the first 70 s or more of them in the queue (--begin; Slurm starts it
    // at its next scheduling pass): submitted with 3 minutes (300 s less the margin,
    // rounded down), lowered when it starts.
    let directory = try project("""
      queued:
        timeout: 300 seconds
        variables:
          SCHEDULER_PARAMETERS: "--begin=now+70"
        script:
          - echo "started"
          - sleep 400
      """)
    let started = Date()
    let result = try ciLocal(directory, backend: backend)
    #expect(result.status == .exited(1))
    #expect(result.stdout.contains("--time=3 "), "\(result.stdout)")
    #expect(result.stdout.contains("min, to end before GitLab stops this CI job (the CI job's timeout of 300 s)"))
    #expect(result.stdout.contains("hit its time limit of 00:0"))
    #expect(result.stdout.contains("ERROR: Job failed: exit code 124"))
    #expect(result.stdout.contains("] started\n"))
    #expect(Date().timeIntervalSince(started) < 300)
  }
}
