#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/gemm.h"
#include "kernels/gemm_kernels.h"
#include "layers/conv_common.h"
double cnn_fma_peak_gflops(void);
static double cpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,(n*4+63)/64*64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}
static void transpose_kernel(const float *w, int K, int F, float *wt)
{
    for (int f = 0; f < F; f++)
        for (int k = 0; k < K; k++) wt[(size_t)f * K + k] = w[(size_t)k * F + f];
}
int main(void){
  int K=4608,F=512;
  float*W=rnd((size_t)K*F),*wt=rnd((size_t)K*F),*pw=rnd((size_t)K*F*2),*dw=rnd((size_t)K*F);
  double t0=cpu(); float v=cnn_peak_avx512(1<<23); double t1=cpu();
  printf("peak cpu %.1f GF/s (%g)\n",(double)(1<<23)*12*32/(t1-t0)*1e-9,v);
  t0=cpu(); for(int r=0;r<5;r++) transpose_kernel(W,K,F,wt); t1=cpu(); printf("transpose %.2f ms\n",(t1-t0)/5*1e3);
  t0=cpu(); for(int r=0;r<5;r++) memset(pw,0,4ul*K*F); t1=cpu(); printf("memset %.2f ms\n",(t1-t0)/5*1e3);
  t0=cpu(); for(int r=0;r<5;r++) cnn_conv_sum_partials(pw,(size_t)K*F,2,(size_t)K*F,dw); t1=cpu(); printf("sum_partials(2) %.2f ms\n",(t1-t0)/5*1e3);
  return 0;}
