#include "model/progress.h"

#include <math.h>
#include <unistd.h>

enum { BAR_WIDTH = 30 };

void cnn_progress_begin(cnn_progress *p, FILE *out, cnn_verbosity v, int epoch, int epochs, int steps)
{
    p->out = out ? out : stdout;
    p->mode = v;
    if (v == CNN_VERBOSE_AUTO) p->mode = isatty(fileno(p->out)) ? CNN_VERBOSE_BAR : CNN_VERBOSE_LINE;
    p->steps = steps;
    p->start = p->last_draw = cnn_now();
    if (p->mode == CNN_VERBOSE_BAR) fprintf(p->out, "Epoch %d/%d\n", epoch + 1, epochs);
}

static void draw_bar(const cnn_progress *p, int done)
{
    int width = snprintf(NULL, 0, "%d", p->steps);
    int fill = (int)((double)done / p->steps * BAR_WIDTH);
    fprintf(p->out, "\r%*d/%d [", width, done, p->steps);
    for (int i = 0; i < BAR_WIDTH; i++)
        fputc(i < fill ? '=' : (i == fill && done < p->steps) ? '>' : '.', p->out);
    fputc(']', p->out);
}

/* Keras's time format: "1s", "2m 5s" for long epochs. */
static void print_time(FILE *out, double s)
{
    if (s >= 3600)
        fprintf(out, "%d:%02d:%02d", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
    else if (s >= 60)
        fprintf(out, "%dm %ds", (int)(s / 60), (int)fmod(s, 60));
    else
        fprintf(out, "%ds", (int)s);
}

void cnn_progress_step(cnn_progress *p, int step, double loss, double acc)
{
    if (p->mode != CNN_VERBOSE_BAR) return;
    double now = cnn_now();
    if (step < p->steps && now - p->last_draw < 0.1) return; /* redraw at most 10 times a second */
    p->last_draw = now;
    draw_bar(p, step);
    double eta = (now - p->start) / step * (p->steps - step);
    fputs(" - ETA: ", p->out);
    print_time(p->out, eta);
    fprintf(p->out, " - loss: %.4f - accuracy: %.4f\033[K", loss, acc);
    fflush(p->out);
}

void cnn_progress_end(cnn_progress *p, const cnn_epoch_log *log)
{
    if (p->mode == CNN_VERBOSE_SILENT) return;
    double per_step = 1000.0 * log->seconds / (p->steps ? p->steps : 1);
    if (p->mode == CNN_VERBOSE_BAR) {
        draw_bar(p, p->steps);
        fputs(" - ", p->out);
    } else {
        fprintf(p->out, "Epoch %d - %d/%d - ", log->epoch + 1, p->steps, p->steps);
    }
    print_time(p->out, log->seconds);
    fprintf(p->out, " %.0fms/step - loss: %.4f - accuracy: %.4f", per_step, log->loss, log->accuracy);
    if (!isnan(log->val_loss))
        fprintf(p->out, " - val_loss: %.4f - val_accuracy: %.4f", log->val_loss, log->val_accuracy);
    fprintf(p->out, " - lr: %.4g%s\n", log->lr, p->mode == CNN_VERBOSE_BAR ? "\033[K" : "");
    fflush(p->out);
}
