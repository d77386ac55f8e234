#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "layers/conv_common.h"
static double cpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,(n*4+63)/64*64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}
/* pack B (P x N) into 64-col panels, each P x 64 */
static void pack(const float*b,int P,int N,float*pk){for(int j0=0;j0<N;j0+=64){int w=N-j0<64?N-j0:64;float*d=pk+(size_t)j0*P;for(int p=0;p<P;p++){memcpy(d+(size_t)p*64,b+(size_t)p*N+j0,4*w);}}}
int main(int argc,char**argv){
  int hw=atoi(argv[1]), cnt=atoi(argv[2]), reps=atoi(argv[3]);
  cnn_conv_geom g={.ih=hw,.iw=hw,.cin=512,.kh=3,.kw=3,.sh=1,.sw=1,.dh=1,.dw=1,.oh=hw,.ow=hw,.pt=1,.pl=1};
  int hp,wp; cnn_conv_padded_size(&g,&hp,&wp);
  int P=hw*hw, K=4608, F=512, M=cnt*P;
  float*x=rnd((size_t)cnt*hw*hw*512), *xp=rnd((size_t)cnt*hp*wp*512), *W=rnd((size_t)K*F), *y=rnd((size_t)M*F), *pk=rnd((size_t)K*F);
  float *dy=rnd((size_t)M*F), *pw=rnd((size_t)K*F), *wt=rnd((size_t)K*F), *cols=rnd((size_t)M*K);
  int*pix=malloc(sizeof(int)*M),*tap=malloc(sizeof(int)*K);
  cnn_conv_pad(&g,x,cnt,xp); cnn_conv_gather_tables(&g,cnt,pix,tap);
  double fl=2.0*M*F*K;
  for(int v=0; v<2; v++){
  double t0=cpu(); for(int r=0;r<reps;r++) cnn_gemm_gather(M,F,K,xp,pix,tap,W,F,y,F,0); double t1=cpu();
  printf("hw=%d M=%d fwd_inplace  %.1f GF/s\n",hw,M,fl*reps/(t1-t0)*1e-9);
  t0=cpu(); for(int r=0;r<reps;r++){ for(int j0=0;j0<F;j0+=64) cnn_gemm_gather(M,64,K,xp,pix,tap,pk+(size_t)j0*K,64,y+j0,F,0);} t1=cpu();
  printf("hw=%d M=%d fwd_packed   %.1f GF/s\n",hw,M,fl*reps/(t1-t0)*1e-9);
  t0=cpu(); for(int r=0;r<reps;r++){ pack(W,K,F,pk);} t1=cpu();
  printf("pack  %.2f ms (fwd %.2f ms at 70 GF/s)\n",(t1-t0)/reps*1e3, fl/70e9*1e3);
  t0=cpu(); for(int r=0;r<reps;r++) cnn_gemm_gather(K,F,M,xp,tap,pix,dy,F,pw,F,1); t1=cpu();
  printf("dW gather     %.1f GF/s\n",fl*reps/(t1-t0)*1e-9);
  t0=cpu(); for(int r=0;r<reps;r++){ pack(dy,M,F,cols); for(int j0=0;j0<F;j0+=64) cnn_gemm_gather(K,64,M,xp,tap,pix,cols+(size_t)j0*M,64,pw+j0,F,1);} t1=cpu();
  printf("dW packed     %.1f GF/s\n",fl*reps/(t1-t0)*1e-9);
  t0=cpu(); for(int r=0;r<reps;r++) cnn_gemm(M,K,F,dy,F,1,wt,K,cols,K,0); t1=cpu();
  printf("dx dyWt       %.1f GF/s\n",fl*reps/(t1-t0)*1e-9);
  t0=cpu(); for(int r=0;r<reps;r++) cnn_col2im(&g,cols,cnt,x); t1=cpu();
  printf("col2im        %.2f ms\n",(t1-t0)/reps*1e3);
  }
  return 0;}
