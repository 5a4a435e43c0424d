# dL/dz for L = ½ (sigmoid(z) - y)², as an expression in z and y (p = sigmoid(z) allowed)
mse_sigmoid_grad = ""
