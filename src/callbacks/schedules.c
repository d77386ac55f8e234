/* Learning-rate schedules beyond the study's two (those live in lr_scheduler.c): Keras CosineDecay and
 * PiecewiseConstantDecay in float32 as TensorFlow evaluates them, and PyTorch OneCycleLR in double as PyTorch
 * does. Each float32 operation is its own statement so that no compiler fuses a multiply-add, which would
 * round once where TensorFlow rounds twice. */
#include <math.h>

#include "cnnlab.h"

static const float PI_F = 3.14159265358979323846f;

/* Keras CosineDecay._decay_function. */
static float cosine_decay(float step, float decay_steps, float decay_from, double alpha)
{
    float fraction = step / decay_steps;
    float angle = PI_F * fraction;
    float cosine = cosf(angle);
    float half = 1.0f + cosine;
    float decayed = 0.5f * half;
    float scaled = (float)(1.0 - alpha) * decayed; /* Python computes 1 - alpha in double */
    float factor = scaled + (float)alpha;
    return decay_from * factor;
}

double cnn_schedule_cosine(int epoch, double lr, const void *params)
{
    (void)lr;
    const cnn_cosine_schedule *p = params;
    if (p->decay_steps < 1 || p->warmup_steps < 0 || epoch < 0) return NAN;
    float initial = (float)p->initial_lr, decay_steps = (float)p->decay_steps, step = (float)epoch;
    if (!(p->warmup_target > 0)) /* Keras: warmup_target None */
        return cosine_decay(fminf(step, decay_steps), decay_steps, initial, p->alpha);
    float target = (float)p->warmup_target, warmup = (float)p->warmup_steps;
    float end = decay_steps + warmup;
    step = fminf(step, end);
    if (!(step < warmup)) return cosine_decay(step - warmup, decay_steps, target, p->alpha);
    float fraction = step / warmup;
    float delta = target - initial;
    float rise = delta * fraction;
    return rise + initial;
}

double cnn_schedule_piecewise(int epoch, double lr, const void *params)
{
    (void)lr;
    const cnn_piecewise_schedule *p = params;
    if (p->n < 0 || p->n >= CNN_PIECEWISE_MAX) return NAN;
    for (int i = 1; i < p->n; i++)
        if (p->boundaries[i] <= p->boundaries[i - 1]) return NAN;
    int i = 0;
    while (i < p->n && epoch > p->boundaries[i]) i++;
    return (double)(float)p->values[i];
}

cnn_one_cycle_schedule cnn_one_cycle_default(double max_lr, int total_epochs)
{
    return (cnn_one_cycle_schedule){.max_lr = max_lr,
                                    .total_epochs = total_epochs,
                                    .pct_start = 0.3,
                                    .div_factor = 25.0,
                                    .final_div_factor = 1e4};
}

static double anneal(const cnn_one_cycle_schedule *p, double start, double end, double pct)
{
    if (p->linear) return (end - start) * pct + start;
    double cos_out = cos(M_PI * pct) + 1.0;
    return end + (start - end) / 2.0 * cos_out;
}

/* PyTorch OneCycleLR.get_lr: the first phase whose end_step the step has not passed (or the last phase)
 * anneals between its two lrs. */
double cnn_schedule_one_cycle(int epoch, double lr, const void *params)
{
    (void)lr;
    const cnn_one_cycle_schedule *p = params;
    if (p->total_epochs < 1 || !(p->pct_start >= 0 && p->pct_start <= 1) || epoch < 0 ||
        epoch > p->total_epochs)
        return NAN;
    double initial = p->max_lr / p->div_factor, min_lr = initial / p->final_div_factor;
    double total = p->total_epochs, up = p->pct_start * total;
    double ends[3] = {up - 1, total - 1, 0}, from[3] = {initial, p->max_lr, 0},
           to[3] = {p->max_lr, min_lr, 0};
    int phases = 2;
    if (p->three_phase) {
        ends[1] = 2 * p->pct_start * total - 2;
        to[1] = initial;
        ends[2] = total - 1;
        from[2] = initial;
        to[2] = min_lr;
        phases = 3;
    }
    double start = 0, step = epoch;
    for (int i = 0; i < phases; i++) {
        if (step <= ends[i] || i == phases - 1) {
            if (ends[i] == start) return NAN; /* PyTorch: ZeroDivisionError */
            return anneal(p, from[i], to[i], (step - start) / (ends[i] - start));
        }
        start = ends[i];
    }
    return NAN;
}
