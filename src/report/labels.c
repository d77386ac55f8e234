/* The pictures' class names: English, or the Ukrainian names the study's author used (spec 3.1). */
#include "cnnlab.h"

const char *cnn_fashion_class_name_in(int label, cnn_labels lang)
{
    static const char *const uk[10] = {"Футболка/топ", "Штани",   "Пуловер",  "Сукня", "Пальто",
                                       "Босоніжки",    "Сорочка", "Кросівки", "Сумка", "Черевики"};
    if (lang != CNN_LABELS_UK) return cnn_fashion_class_name(label);
    return label >= 0 && label < 10 ? uk[label] : NULL;
}
