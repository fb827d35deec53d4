//! A person at a terminal, for prompt tests: runs a program on a pseudo-terminal (python3's
//! `pty`, as a real terminal would be) and answers the prompts it shows by rules, each answer
//! typed once echo is off (as a person types after reading the question). A TOTP answer is
//! computed with `oathtool` at the moment the prompt appears.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What to type for a prompt.
#[derive(Debug, Clone)]
pub enum Answer {
    /// These words.
    Text(String),
    /// The TOTP code of this hex secret, `steps` 30-second steps ahead of now (0: the current
    /// code). pam_oath refuses a code already used: a test that logs in twice within one step
    /// answers the second time with a code one step ahead (inside pam_oath's window).
    Totp {
        /// The hex secret.
        secret: String,
        /// Steps ahead of now.
        steps: u32,
    },
}

/// One rule: when the screen shows `prompt` (again), type `answer`; used at most `times` times.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Text that identifies the prompt (e.g. `route dr:` or `Verification code`).
    pub prompt: String,
    /// What to type.
    pub answer: Answer,
    /// How many times this rule may answer.
    pub times: usize,
}

/// What happened on the terminal.
#[derive(Debug)]
pub struct Screen {
    /// The exit code of the program (`None`: killed by a signal or still running at the end).
    pub code: Option<i32>,
    /// Everything it printed on the terminal.
    pub text: String,
    /// The prompts answered, in order, as the rule's `prompt` text.
    pub answered: Vec<String>,
}

const DRIVER: &str = r#"
import json, os, pty, select, subprocess, sys, termios, time
rules = json.loads(os.environ.pop("TK_PTY_RULES"))
limit = float(os.environ.pop("TK_PTY_SECONDS"))
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen, deadline, answered, looked = b"", time.time() + limit, [], 0
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if not r:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    for rule in rules:
        if rule["times"] <= 0:
            continue
        at = seen.find(rule["prompt"].encode(), looked)
        if at < 0:
            continue
        while time.time() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
            select.select([], [], [], 0.02)
        if rule["secret"]:
            now = int(time.time()) + 30 * rule["steps"]
            code = subprocess.run(["oathtool", "--totp", "-d", "6", "--now", "@%d" % now, rule["secret"]],
                                  capture_output=True, check=True).stdout.strip()
            os.write(fd, code + b"\n")
        else:
            os.write(fd, rule["text"].encode() + b"\n")
        rule["times"] -= 1
        answered.append(rule["prompt"])
        looked = len(seen)
        break
code = None
for _ in range(100):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
sys.stdout.write(json.dumps({"code": code, "text": seen.decode(errors="replace"), "answered": answered}))
"#;

/// Runs `program args` on a pseudo-terminal for at most `limit`, answering prompts by `rules`,
/// with `env` added to its environment. Needs `python3` (and `oathtool` for TOTP answers).
pub fn on_pty(
    program: &Path,
    args: &[OsString],
    env: &[(&str, OsString)],
    rules: &[Rule],
    limit: Duration,
) -> Screen {
    let python = crate::find_program("python3", "python3");
    if rules
        .iter()
        .any(|r| matches!(r.answer, Answer::Totp { .. }))
    {
        crate::find_program("oathtool", "oathtool");
    }
    let json: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            let (text, secret, steps) = match &r.answer {
                Answer::Text(t) => (t.clone(), String::new(), 0),
                Answer::Totp { secret, steps } => (String::new(), secret.clone(), *steps),
            };
            serde_json::json!({
                "prompt": r.prompt, "text": text, "secret": secret, "steps": steps, "times": r.times,
            })
        })
        .collect();
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(DRIVER)
        .arg(program)
        .args(args)
        .env("TK_PTY_RULES", serde_json::Value::Array(json).to_string())
        .env("TK_PTY_SECONDS", limit.as_secs_f64().to_string());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python3 drives the pty");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pty driver output ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Screen {
        code: v["code"].as_i64().and_then(|c| i32::try_from(c).ok()),
        text: v["text"].as_str().unwrap_or_default().to_string(),
        answered: v["answered"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
