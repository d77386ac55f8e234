/* cnn_run_isolated: fork, let the child work and write [status][message length][message][payload] to a
 * pipe, read it in the parent with a watchdog on silence, and reap the child. The child leaves with _exit so
 * that none of the parent's atexit handlers (a test's temporary folder) runs twice. */
#include "io/isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"

/* The child's message: fn's status and error, then what fn produced. */
static void frame(int rc, const cnn_strbuf *payload, cnn_strbuf *out)
{
    const char *msg = rc ? cnn_errmsg() : "";
    int32_t status = payload->failed && !rc ? CNN_ERR_NOMEM : rc;
    uint32_t len = (uint32_t)strlen(msg);
    cnn_strbuf_append(out, &status, sizeof status);
    cnn_strbuf_append(out, &len, sizeof len);
    cnn_strbuf_append(out, msg, len);
    if (!status) cnn_strbuf_append(out, payload->data, payload->len);
}

/* Splits a frame back into the status (with the error set) and the payload. */
static int unframe(const cnn_strbuf *in, const char *what, cnn_strbuf *result)
{
    int32_t status;
    uint32_t len;
    if (in->failed) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", what);
    if (in->len < sizeof status + sizeof len)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the reader stopped early; the file is damaged", what);
    memcpy(&status, in->data, sizeof status);
    memcpy(&len, in->data + sizeof status, sizeof len);
    size_t head = sizeof status + sizeof len;
    if (len > in->len - head)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the reader stopped early; the file is damaged", what);
    if (status) return cnn_fail(status, "%.*s", (int)len, in->data + head);
    cnn_strbuf_append(result, in->data + head + len, in->len - head - len);
    return result->failed ? cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", what) : CNN_OK;
}

/* Reads until the child closes the pipe; 1 when it stayed silent for idle_seconds. */
static int drain(int fd, int idle_seconds, cnn_strbuf *in)
{
    char chunk[1 << 16];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, idle_seconds * 1000);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 1;
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        cnn_strbuf_append(in, chunk, (size_t)k);
    }
}

static void child(int (*fn)(void *, cnn_strbuf *), void *arg, int fd)
{
    /* The caller's crash handlers (a test framework's, a longjmp back into its code) must not run here: a
     * crash ends this process and the parent reports it. */
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGPIPE};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
    /* Whatever the child's libraries would print (a sanitizer's report on libhdf5) is the parent's error. */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDERR_FILENO);
    cnn_strbuf payload = {0}, out = {0};
    int rc = fn(arg, &payload);
    frame(rc, &payload, &out);
    cnn_write_all(fd, out.data, out.len);
    _exit(0);
}

static int in_process(int (*fn)(void *, cnn_strbuf *), void *arg, const char *what, cnn_strbuf *result)
{
    cnn_strbuf payload = {0}, framed = {0};
    frame(fn(arg, &payload), &payload, &framed);
    int rc = unframe(&framed, what, result);
    cnn_strbuf_free(&payload);
    cnn_strbuf_free(&framed);
    return rc;
}

int cnn_run_isolated(int (*fn)(void *arg, cnn_strbuf *out), void *arg, int idle_seconds, const char *what,
                     cnn_strbuf *result)
{
    int fds[2];
    if (pipe(fds)) return in_process(fn, arg, what, result);
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return in_process(fn, arg, what, result);
    }
    if (pid == 0) {
        close(fds[0]);
        child(fn, arg, fds[1]);
    }
    close(fds[1]);
    cnn_strbuf in = {0};
    int hung = drain(fds[0], idle_seconds, &in);
    close(fds[0]);
    if (hung) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
    int rc;
    if (hung)
        rc = cnn_fail(CNN_ERR_FORMAT,
                      "%s: the reader did not finish (no progress for %d s); the file is damaged", what,
                      idle_seconds);
    else if (WIFSIGNALED(status))
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: the reader crashed on it (signal %d); the file is damaged", what,
                      WTERMSIG(status));
    else
        rc = unframe(&in, what, result);
    cnn_strbuf_free(&in);
    return rc;
}
