/* A native extension built with OpenMP, as LightGBM, XGBoost and OpenMP builds of
 * scikit-learn are: the shared object records libgomp.so.1 as a dependency (DT_NEEDED). */
#include <omp.h>

int ompscale_threads(void) { return omp_get_max_threads(); }

void ompscale(double *values, int n, double factor) {
#pragma omp parallel for
    for (int i = 0; i < n; i++) values[i] *= factor;
}
